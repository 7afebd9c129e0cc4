"""Cheap objective factories for the worker tests, importable by spawned workers and the CLI.

They stand in for generator training: how trials are shared, recorded, failed and retried across worker processes
does not depend on what the objective computes, and a sub-second objective keeps the tests short. Each factory
takes picklable keyword arguments and returns `trial -> value`, like the platform's real objective factory.
"""

from __future__ import annotations

import os
import time

import optuna


def quadratic(sleep_s: float = 0.0, fail_on_trials: tuple[int, ...] = ()):
    """(x - 2)² + (y + 1)², sleeping `sleep_s` per trial; raises on the listed trial numbers."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        if trial.number in set(fail_on_trials):
            raise RuntimeError(f"planned failure of trial {trial.number}")
        time.sleep(sleep_s)
        return (x - 2.0) ** 2 + (y + 1.0) ** 2

    return objective


def constrained_quadratic(store_constraints: bool = True):
    """(x - 2)², best at x = 2, under the constraint x <= 0 (stored as the user attr 'constraints' = [x])."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        if store_constraints:
            trial.set_user_attr("constraints", [x])
        return (x - 2.0) ** 2

    return objective


def two_objectives():
    """Two conflicting objectives: x² and (x - 2)²."""

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", -5.0, 5.0)
        return x**2, (x - 2.0) ** 2

    return objective


def blocks_first_trial(marker_path: str, block_s: float = 120.0):
    """The first trial to create `marker_path` marks itself `blocking` and sleeps until the test kills its worker
    (raising if nobody does within `block_s`); every other trial, its retry included, is the quadratic."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        try:
            os.close(os.open(marker_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return (x - 2.0) ** 2 + (y + 1.0) ** 2
        trial.set_user_attr("blocking", True)
        time.sleep(block_s)
        raise RuntimeError(f"trial {trial.number} was meant to be killed within {block_s} s but was not")

    return objective
