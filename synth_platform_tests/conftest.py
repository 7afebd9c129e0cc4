"""Shared fixtures: real data from ../shared/datasets (or the bundled copy), real PostgreSQL, tiny run configs."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
# The key that seals asset values lives outside every DAGSTER_HOME a test makes (as it does outside a real one),
# and outside the developer's ~/.config.
os.environ.setdefault("SYNTH_STORAGE_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="synth_platform_key_"), "storage.key"))

import pandas as pd
import pytest
import sqlalchemy as sa

from synth_platform.sampling.source import BUNDLED_DATASET

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
PG_ADMIN_URL = os.environ.get("SYNTH_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")

# The smallest run config that still trains real synthcity generators end to end.
TINY_RUN_CONFIG = {
    "ops": {
        "source_sample": {"config": {"max_rows": 600}},
        "tuned_hyperparameters": {"config": {"n_trials": 2, "trial_steps": 20, "tuning_rows": 300}},
        "synthetic_table": {"config": {"training_steps": 30, "num_rows": 300}},
        "privacy_utility_report": {"config": {"privacy_rows": 200}},
    }
}


def tiny_config(bootstrap_resamples: int = 50, **ops: dict) -> dict:
    """A copy of TINY_RUN_CONFIG with the report's bootstrap resamples and each op's config updated by `ops`."""
    import copy

    config = copy.deepcopy(TINY_RUN_CONFIG)
    config["ops"]["privacy_utility_report"]["config"]["bootstrap_resamples"] = bootstrap_resamples
    for op, values in ops.items():
        config["ops"].setdefault(op, {"config": {}})["config"].update(values)
    return config


@pytest.fixture(autouse=True)
def _no_dead_defs_state_storage():
    """Dagster keeps the active instance's defs-state storage in a ContextVar. A directly invoked asset or check
    context enters an ephemeral instance and, when garbage-collected at some later moment, resets that ContextVar
    to what it held when the context was made, which can be the storage of an instance a module fixture has since
    disposed; the next `materialize` then fails with "undefined DagsterInstance weakref". Each test starts without
    such a leftover (the tests close their direct contexts; this catches any that are collected late)."""
    from dagster._core.storage.defs_state.base import DefsStateStorage, set_defs_state_storage

    storage = DefsStateStorage.get()
    weak = getattr(storage, "_instance_weakref", None)
    if storage is not None and weak is not None and weak() is None:
        with set_defs_state_storage(None):
            yield
    else:
        yield


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    from synth_platform.generation.generators import configure_compute

    configure_compute(2)


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    with gzip.open(BUNDLED_DATASET, "rt") as handle:
        return pd.read_csv(handle)


@pytest.fixture(scope="session")
def adult_small(adult) -> pd.DataFrame:
    return adult.sample(800, random_state=0).reset_index(drop=True)


def _shared_dataset(file_name: str) -> pd.DataFrame:
    path = SHARED_DATASETS / file_name
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read real data from ../shared/datasets beside the clone.")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    return _shared_dataset("penguins.csv")


@pytest.fixture(scope="session")
def credit() -> pd.DataFrame:
    return _shared_dataset("credit_data.csv")


# The role every test database belongs to: it can create and fill tables in its own databases, and is nothing
# more (no superuser, no CREATEROLE, no server-file or server-program roles), so the platform's refusal of
# privileged roles (sampling/privileges.py) lets the tests read. Tests of that refusal use PG_ADMIN_URL.
PG_TEST_ROLE = "synth_test_owner"


def _ensure_test_role(admin: sa.Engine) -> None:
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": PG_TEST_ROLE}).first()
        if exists is None:
            try:
                conn.exec_driver_sql(f'CREATE ROLE "{PG_TEST_ROLE}" LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB')
            except sa.exc.ProgrammingError:  # another test process created it first
                pass


@contextlib.contextmanager
def fresh_pg_database(owner: str | None = PG_TEST_ROLE):
    """A fresh, empty PostgreSQL database on the local server, dropped on exit. Yields its URL, which connects as
    `owner` (the database's owner: a plain, unprivileged role by default; None: the admin role)."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"synth_test_{uuid.uuid4().hex[:10]}"
    try:
        if owner is not None:
            _ensure_test_role(admin)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.orig}); start it (see README).")
    url = sa.make_url(PG_ADMIN_URL).set(database=name)
    if owner is not None:
        url = url.set(username=owner, password=None)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def admin_url_of(url: str) -> str:
    """The same database, connected as the admin (superuser) role of PG_ADMIN_URL."""
    admin = sa.make_url(PG_ADMIN_URL)
    return sa.make_url(url).set(username=admin.username, password=admin.password).render_as_string(hide_password=False)


@pytest.fixture()
def pg_database():
    """A fresh, empty PostgreSQL database for one test. Yields its URL."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def pg_database_for_module():
    """A fresh, empty PostgreSQL database shared by the tests of one module. Yields its URL."""
    with fresh_pg_database() as url:
        yield url
