"""Fidelity benchmark: our main job against synthcity's plain defaults, side by side, on the same rows, seed, time
budget and metric code.

What it measures. For each dataset (Adult, credit_data, penguins, the built patient table) and method:

    ours    the main job: the whole asset graph (source_sample → … → privacy_utility_report) on a fresh Dagster
            instance and a fresh platform store, every setting at its default except
            synthetic_table.time_budget_minutes = the budget (and the seeds, and source_sample.max_rows with
            --max-rows). Its metrics are read from the report JSON the run wrote.
    arfpy   adversarial random forests (arfpy, which synthcity's `arf` wraps) with synthcity's arf defaults, called
            directly so that categorical columns stay categories (see ARFPY); otherwise as a plain plugin below.
    ddpm, ctgan, tvae (or any synthcity plugin named in --methods)
            `Plugins().get(name)` with synthcity's default parameters (only random_state = --seed, a temporary
            workspace and strict=False are given: see below), fitted on the training rows our job's generator saw
            (the source_sample asset's training split, disclosure-controlled and encoded NaN-free by the
            profiled_dataset asset: synthcity cannot take missing values or datetimes, so this gives it our
            encoding, never our tuning, sampler or contract), generating as many rows as there are training rows
            (--plain-rows: another count), decoded back to the source's schema. Its metrics
            come from the same `build_report` (synth_platform/evaluation/report.py) the report asset calls, with
            the report's default settings, on the same training rows and the same holdout.

Printed per row (markdown): KS mean, TVD mean, correlation delta, association delta, detection AUC, TSTR/TRTR
ratio, membership-inference AUC, exact-copy rate, all green (the 4 blocking thresholds at their defaults: KS mean,
correlation delta, MIA AUC, exact-copy rate), the synthetic rows, and wall times.

How equal time is enforced. Every method gets the same wall-time budget (--budget-minutes):
- ours: `time_budget_minutes` = the budget; the platform's TimeBudget splits it (time_budget.SPLIT_RULE) between
  reading, profiling and tuning, the final fit (cut at the end of the epoch nearest its deadline) and a reserve for
  sampling and the report. "wall s (budgeted)" is the whole run; "wall s (fit+sample)" its synthetic_table step.
- plain plugins: the fit is cut at a deadline = the budget less a sampling reserve (the platform's reserve rule
  without the report part: at least 10 % of the budget, or the expected sampling time of the rows, at most half of
  it). The cut uses the platform's own hook: time_budget.FitTimeLimit, called after every epoch, through a synthcity
  callback for TabDDPM (its learning-rate schedule is left as synthcity sets it) and through training_hooks'
  epoch watcher for the GAN and VAE loops (ctgan, tvae, dpgan, …), which keeps the model as trained so far. A
  plugin with no epoch hook (nflow, arf, …) is timed by fits of 1 and 5 epochs, then fitted with n_iter scaled to
  the time left (said in a footnote); one without n_iter (bayesian_network, …) runs as it is (footnote too). Plain
  plugins get the whole fit time (there is no tuning to share it with); "wall s" of a plain row is its fit plus its
  sampling (its budgeted part). Sampling is one pass (strict=False): synthcity's default strict mode re-samples up
  to 500 times to replace rows outside the training schema and duplicates, with no time bound (800 patient rows
  from a time-cut ddpm: 68 s instead of 9 s); --plain-strict puts it back, untimed.

Curve mode: --budgets 2,5,15 runs ours only, once per budget (a fresh store each: no study carries over), one row
per budget.

Commands (from the repository root, with the project's venv):

    .venv/bin/python benchmarks/fidelity.py                                     # full: 4 datasets × 4 methods, 15 min each
    .venv/bin/python benchmarks/fidelity.py --budget-minutes 1 --max-rows 3000  # quick
    .venv/bin/python benchmarks/fidelity.py --datasets penguins --methods ours,tvae --budget-minutes 0.5
    .venv/bin/python benchmarks/fidelity.py --datasets adult --budgets 2,5,15 --out docs/fidelity_curve.md
    .venv/bin/python benchmarks/fidelity.py --datasets adult --methods ours --ours-set tuned_hyperparameters.objective=fidelity

Expected duration on the 2-core machine: each method runs up to about its budget (ours may overrun small budgets:
source, profile and report have fixed costs; a plain plugin may end early when its default epochs fit, as ddpm's
1,000 epochs on penguins do in ~15 s), plus the plain methods' evaluation (the report's metrics: seconds on small
tables, a minute or two on Adult's 39,000 training rows). The full run is therefore at most about 4 datasets × 4
methods × 15 min + evaluation ≈ 4 h 15 min (less: the small tables end early); the quick one (1 min, 3,000 rows)
about 20–25 min; the penguins command above 75 s (measured, with another benchmark on both cores). A curve costs
the sum of its budgets per dataset.

Nothing here connects to a non-loopback address or downloads anything: the sources are SQLite files and the
bundled Adult, MLflow tracking is a local SQLite store with its telemetry turned off, and plugins that download
models (great) are refused. No source value is printed: only metrics, row counts and times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import math
import os
import shlex
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")
# No telemetry (MLflow 3 sends usage records to a remote endpoint unless told not to), nothing fetched from a hub.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ["HF_HUB_OFFLINE"] = "1"

import dagster as dg  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import DATASETS, base_run_config, definitions_for, source_for  # noqa: E402
from synth_platform import attempt_chain  # noqa: E402
from synth_platform.assets import GenerationConfig, ReportConfig  # noqa: E402
from synth_platform.generation import generators, time_budget  # noqa: E402
from synth_platform.resources import PlatformStorage  # noqa: E402

METHODS = ("ours", "ddpm", "ctgan", "tvae")
# Plugins that fetch weights or data from the network (GReaT downloads a language model): refused.
NETWORK_PLUGINS = frozenset({"great"})
# Plain sampling time (fixed seconds, seconds per synthetic row), to leave room for sampling before the budget ends.
# synthcity's TabDDPM samples through all 1,000 of its timesteps: ~73 s for 10,000 Adult rows on the 2-core machine
# (README, 7.3 ms a row), and measured here 14 s for 275 penguin rows with another benchmark on both cores (the
# 1,000 steps cost ~14 ms each however few the rows). The GAN and VAE decoders are one pass (the platform's 3 ms a
# row is ample).
PLAIN_SAMPLING = {"ddpm": (15.0, 0.008)}
# --ours-set ops whose values are never shown (footnotes, the --out file's command): source_sample's settings may
# hold a filter value on a sensitive column.
WITHHELD_SETTINGS = frozenset({"source_sample"})
CALIBRATION_EPOCHS = 4  # a plugin without an epoch hook: extra epochs of its second timing fit
# arfpy 0.1.1 (the adversarial random forests synthcity's `arf` plugin wraps) called directly, with synthcity's arf
# defaults (30 trees, min_node_size 5, delta 0, at most 10 rounds, early stop), on the rows with their categorical
# columns as pandas categories. synthcity's plugin hands arf its label-encoded integers instead, which arf models as
# continuous columns and samples outside the codes: "y contains previously unseen labels" on Adult.
ARFPY = "arfpy"
ARFPY_DEFAULTS = {"num_trees": 30, "delta": 0, "max_iters": 10, "early_stop": True, "min_node_size": 5}


class ArfpyModel:
    """arfpy fitted on `encoded` (forest rounds, then the leaves' densities), sampled like a synthcity plugin."""

    def __init__(self, encoded: Any, seed: int) -> None:
        import numpy as np
        from arfpy import arf

        self.columns, self.dtypes = list(encoded.columns), encoded.dtypes
        frame = encoded.copy()
        for column in frame.columns:
            if frame[column].dtype == object or str(frame[column].dtype) in ("bool", "string"):
                frame[column] = frame[column].astype("category")
        np.random.seed(seed)
        self.model = arf.arf(x=frame, verbose=False, random_state=seed, **ARFPY_DEFAULTS)
        self.model.forde()

    def generate(self, count: int, random_state: int) -> Any:
        import types

        import numpy as np

        np.random.seed(random_state)
        frame = self.model.forge(n=count)[self.columns]
        for column in self.columns:
            frame[column] = frame[column].astype(object if self.dtypes[column] == object else self.dtypes[column])
        return types.SimpleNamespace(dataframe=lambda: frame)
# Short names of the judged metrics (report verdicts), for the "all green" column's failures.
SHORT = {"ks_mean": "KS", "correlation_delta": "corr", "membership_inference_auc": "MIA", "exact_copy_rate": "copies",
         "detection_auc": "detection", "tstr_ratio": "TSTR"}


def log(message: str) -> None:
    print(f"[fidelity {dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    dataset: str
    method: str
    budget_minutes: float
    metrics: dict[str, Any] = field(default_factory=dict)
    all_green: bool | None = None
    failed: list[str] = field(default_factory=list)  # blocking checks that failed
    rows: dict[str, int] = field(default_factory=dict)
    fit_sample_s: float | None = None
    budgeted_s: float | None = None
    notes: list[str] = field(default_factory=list)  # footnotes
    error: str = ""


@dataclass
class Prepared:
    """What the plain methods need of our job's first two steps: the split, the profile and the encoded rows."""

    training: Any  # disclosure-controlled training rows (what the report compares against)
    holdout: Any
    encoded: Any  # what a generator is fitted on
    profile: Any
    fingerprint: str


def parse_settings(items: list[str]) -> dict[str, dict[str, Any]]:
    """`--ours-set OP.KEY=VALUE` items as {op: {key: value}}; VALUE is read as JSON when it parses (numbers, true,
    lists), else kept as text. ValueError names (by what precedes its `=`: never a value) an item not of that form."""
    settings: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, text = item.partition("=")
        op, dot, key = target.strip().partition(".")
        if not (sep and dot and op and key and text.strip()):
            raise ValueError(f"{target.strip()!r}: give OP.KEY=VALUE, e.g. tuned_hyperparameters.objective=fidelity")
        try:
            value = json.loads(text)
        except ValueError:
            value = text.strip()
        settings.setdefault(op, {})[key.strip()] = value
    return settings


def shown_setting(item: str) -> str:
    """An OP.KEY=VALUE item as the footnote and the --out file's command show it: a source_sample value withheld (its
    settings may hold a filter value on a sensitive column)."""
    target, _, _ = item.partition("=")
    return f"{target}=(withheld)" if target.strip().partition(".")[0] in WITHHELD_SETTINGS else item


def shown_command(argv: list[str]) -> str:
    """The command line, every --ours-set item as `shown_setting` shows it (`--ours-set ITEM` or `--ours-set=ITEM`)."""
    shown = []
    for arg in argv:
        option, eq, rest = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        shown.append(f"{option}={shown_setting(rest)}" if option and eq else shown_setting(rest) if not option else arg)
    return shlex.join(shown)


def run_config(name: str, *, budget: float, seed: int, max_rows: int, verbose: bool,
               settings: dict[str, dict[str, Any]] | None = None) -> dict:
    """Our job's run config for `name`: the defaults, the table's own settings, the budget and the seeds, then
    `settings` (--ours-set) over them."""
    config = base_run_config(name)
    ops = config["ops"]

    def put(op: str, **values: Any) -> None:
        ops.setdefault(op, {"config": {}})["config"].update(values)

    put("source_sample", seed=seed, **({"max_rows": max_rows} if max_rows else {}))
    put("tuned_hyperparameters", seed=seed)
    put("synthetic_table", time_budget_minutes=budget, seed=seed)
    put("privacy_utility_report", seed=seed)
    for op, values in (settings or {}).items():
        put(op, **values)
    config["loggers"] = {"console": {"config": {"log_level": "INFO" if verbose else "WARNING"}}}
    return config


def prepared_from(sample: Any, profiled: Any) -> Prepared:
    from synth_platform.profiling.profile import apply_disclosure_control

    profile = profiled.profile
    return Prepared(apply_disclosure_control(sample.training, profile), apply_disclosure_control(sample.holdout, profile),
                    profiled.encoded_training, profile, sample.fingerprint)


def run_ours(name: str, source: Any, work: Path, *, budget: float, seed: int, max_rows: int,
             verbose: bool, settings: dict[str, dict[str, Any]] | None = None) -> tuple[Row, Prepared | None]:
    """The main job on a fresh instance and store; its row, and its split and profile for the plain methods."""
    row = Row(name, "ours", budget)
    config = run_config(name, budget=budget, seed=seed, max_rows=max_rows, verbose=verbose, settings=settings)
    if settings:
        row.notes.append("settings: " + ", ".join(shown_setting(f"{op}.{key}={json.dumps(value)}")
                                                  for op, values in settings.items() for key, value in values.items()))
    home, store = work / "dagster_home", work / "platform"
    home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        job = definitions_for(source, PlatformStorage(root=str(store))).resolve_job_def("adult_synthesis_job")
        started = time.perf_counter()
        result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
        row.budgeted_s = time.perf_counter() - started
        steps = {s.step_key: s for s in instance.get_run_step_stats(result.run_id)}
        fit = steps.get("synthetic_table")
        if fit is not None and fit.start_time and fit.end_time:
            row.fit_sample_s = fit.end_time - fit.start_time
        report = attempt_chain.report_of_run(instance, result.run_id)
        not_passed = sorted(f"{e.check_name} ({e.severity.value.lower()})"
                            for e in result.get_asset_check_evaluations() if not e.passed)
        prepared = None
        try:
            prepared = prepared_from(result.output_for_node("source_sample"), result.output_for_node("profiled_dataset"))
        except Exception as exc:  # noqa: BLE001 - a refused read: no split to give the plain methods
            log(f"{name}/ours: no source_sample / profiled_dataset output ({type(exc).__name__})")
    if report is None:
        failures = [e for e in result.all_events if e.is_step_failure]
        row.error = "no report: " + ("; ".join(f"{e.step_key} failed" for e in failures) or "the run did not write one")
        return row, prepared
    fill_from_report(row, report)
    plan = report.get("generator", {})
    if plan.get("training_steps"):
        row.notes.append(f"final fit: {plan.get('plugin')}, {plan['training_steps']:,} steps in {plan.get('fit_seconds', 0):.0f} s")
    row.notes.append("asset checks not passed: " + ", ".join(not_passed) if not_passed
                     else "every asset check passed (the contract's included)")
    return row, prepared


def prepare(name: str, source: Any, work: Path, *, seed: int, max_rows: int, verbose: bool) -> Prepared:
    """source_sample and profiled_dataset alone (when ours is not run), with our job's settings: the same split."""
    from synth_platform.assets import profiled_dataset, source_sample

    config = run_config(name, budget=time_budget.DEFAULT_BUDGET_MINUTES, seed=seed, max_rows=max_rows, verbose=verbose)
    config["ops"] = {op: c for op, c in config["ops"].items() if op in ("source_sample", "profiled_dataset")}
    home = work / "dagster_home"
    home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        resources = definitions_for(source, PlatformStorage(root=str(work / "platform"))).resources
        result = dg.materialize([source_sample, profiled_dataset], run_config=config, instance=instance,
                                resources={k: v for k, v in resources.items() if k in ("source_database", "platform_storage", "io_manager")})
        return prepared_from(result.output_for_node("source_sample"), result.output_for_node("profiled_dataset"))


def fill_from_report(row: Row, report: dict) -> None:
    row.metrics = dict(report["metrics"])
    row.all_green = bool(report["all_green"])
    row.failed = [SHORT.get(v["metric"], v["metric"]) for v in report["verdicts"].values()
                  if not v["passed"] and v.get("blocking", True)]
    row.rows = dict(report["rows"])


def plain_reserve_s(plugin: str, total_s: float, rows: int) -> float:
    """Seconds a plain plugin keeps for sampling: the platform's reserve rule (time_budget.default_reserve_s)
    without its report part."""
    fixed, rate = PLAIN_SAMPLING.get(plugin, (0.0, time_budget.SAMPLING_SECONDS_PER_ROW))
    return min(max(time_budget.RESERVE_SHARE * total_s, fixed + rate * rows), time_budget.MAX_RESERVE_SHARE * total_s)


def plugin_loader(plugin: str) -> Any:
    loader = generators.synthcity_plugins()  # the generic and privacy plugins, loader noise muted
    if plugin in loader.list():
        return loader
    from synthcity.plugins import Plugins

    return Plugins()


def default_n_iter(loader: Any, plugin: str) -> int | None:
    parameter = inspect.signature(loader.get_type(plugin).__init__).parameters.get("n_iter")
    return parameter.default if parameter is not None and isinstance(parameter.default, int) else None


def hooked_loop(loader: Any, plugin: str) -> bool:
    """Does the plugin train through synthcity's GAN or VAE epoch loop (which training_hooks can cut)?"""
    module = inspect.getmodule(loader.get_type(plugin))
    try:
        text = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return False
    return "TabularGAN" in text or "TabularVAE" in text


def fit_plain(plugin: str, encoded: Any, *, seed: int, limit_s: float, workspace: Path, row: Row,
              strict: bool = False) -> Any:
    """A synthcity plugin with its default parameters, fitted on `encoded` and cut at `limit_s` seconds."""
    from synthcity.plugins.core.dataloader import GenericDataLoader
    from synthcity.utils.callbacks import Callback

    from synth_platform.generation.training_hooks import EpochWatcher, TimeLimitReached, watching

    if plugin == ARFPY:
        row.notes.append("not time-limited: arfpy has no epoch hook (its forest rounds end at its early stop); "
                         "categorical columns given as categories")
        return ArfpyModel(encoded, seed)
    loader = plugin_loader(plugin)
    n_iter = default_n_iter(loader, plugin)
    data = GenericDataLoader(encoded)
    started = time.monotonic()
    limit = time_budget.FitTimeLimit(started + limit_s, max_epochs=n_iter or 1, plugin=plugin, started=started,
                                     log=lambda message: log(f"  {row.dataset}/{plugin}: {message}"))
    # strict=False unless --plain-strict: one sampling pass. synthcity's default strict mode drops rows outside the
    # training schema and duplicates and samples again, up to 500 passes, with no time bound (measured: 800 patient
    # rows from a ddpm cut at the time limit took 68 s instead of 9 s); the platform's decoding holds the rows to the
    # source's ranges and types.
    kwargs: dict[str, Any] = {"random_state": seed, "workspace": workspace, "strict": strict}
    if plugin == "ddpm":
        epochs = [0]

        class CutAtDeadline(Callback):  # stops TabDDPM's epoch loop; leaves its n_iter (and learning-rate decay) alone
            def on_epoch_begin(self, model: Any) -> None:
                pass

            def on_epoch_end(self, model: Any) -> None:
                epochs[0] += 1
                if limit.epoch_end(epochs[0]):
                    model.should_stop = True

            def on_fit_begin(self, model: Any) -> None:
                pass

            def on_fit_end(self, model: Any) -> None:
                pass

        model = loader.get(plugin, callbacks=[CutAtDeadline()], **kwargs)
        model.fit(data)
    elif hooked_loop(loader, plugin):
        watcher = EpochWatcher(plugin, n_iter or 1, time_limit=limit)
        model = loader.get(plugin, **kwargs)
        with watching(watcher):
            try:
                model.fit(data)
            except TimeLimitReached:  # a GAN / VAE whose time is up: its weights as trained so far are the model
                model.fitted = True
    elif n_iter:  # no epoch hook: time fits of 1 and 1 + CALIBRATION_EPOCHS epochs, then n_iter scaled to what is left
        one = time.monotonic()
        loader.get(plugin, n_iter=1, **kwargs).fit(data)
        more = time.monotonic()
        loader.get(plugin, n_iter=1 + CALIBRATION_EPOCHS, **kwargs).fit(data)
        now = time.monotonic()
        first, longer = more - one, now - more
        per_epoch = max((longer - first) / CALIBRATION_EPOCHS, longer / (1 + CALIBRATION_EPOCHS) / 10, 1e-3)
        setup = max(0.0, first - per_epoch)  # building the model and encoding the rows, paid once per fit
        epochs = max(1, min(n_iter, int((limit_s - (now - started) - setup) / per_epoch)))
        row.notes.append(f"no epoch hook to cut it: n_iter scaled to {epochs} of {n_iter} from two timing fits "
                         f"(~{per_epoch:.2f} s an epoch, {setup:.1f} s setup; both counted in the wall time)")
        model = loader.get(plugin, n_iter=epochs, **kwargs)
        model.fit(data)
        return model
    else:
        row.notes.append("not time-limited: no epoch hook and no n_iter (ran as synthcity runs it)")
        model = loader.get(plugin, **kwargs)
        model.fit(data)
        return model
    row.notes.append(plain_fit_note(limit.record(time.monotonic() - started), n_iter))
    return model


def plain_fit_note(record: dict[str, Any], n_iter: int | None) -> str:
    """How a hooked plain fit ended, from its FitTimeLimit record: cut by the time limit, its own early stop
    (synthcity's GAN and VAE loops stop when their validation loss stops improving), or all its epochs."""
    limit_s, epochs, stopped = record["time_limit_s"], record["epochs"], record.get("stopped_early_at_epoch")
    if not epochs:
        return "not time-limited: its epoch hook never fired (ran as synthcity runs it)"
    if stopped:
        return f"cut by the time limit ({limit_s:.0f} s) after epoch {stopped} of {n_iter}"
    if n_iter and epochs < n_iter:
        return (f"ended by its own early stop after epoch {epochs} of {n_iter}, {record['seconds']:.0f} s into its "
                f"time limit ({limit_s:.0f} s)")
    return f"all {epochs} default epochs within the time limit ({limit_s:.0f} s)"


def run_plain(plugin: str, prepared: Prepared, *, budget: float, seed: int, target: str, dataset: str,
              rows: int = 0, strict: bool = False) -> Row:
    """A plain synthcity plugin on our job's training rows, within the budget, scored by the report's own code."""
    from synth_platform.evaluation.report import build_report
    from synth_platform.profiling.profile import decode_from_generation, renumber_surrogate_keys

    row = Row(dataset, plugin, budget)
    count = rows or len(prepared.encoded)
    total_s = budget * 60.0
    limit_s = total_s - plain_reserve_s(plugin, total_s, count)
    generators.configure_compute()  # the torch threads our job uses: every available core
    with tempfile.TemporaryDirectory(prefix=f"fidelity-{plugin}-") as workspace:
        started = time.perf_counter()
        model = fit_plain(plugin, prepared.encoded, seed=seed, limit_s=limit_s, workspace=Path(workspace), row=row,
                          strict=strict)
        fitted_s = time.perf_counter() - started
        generated = model.generate(count=count, random_state=seed).dataframe()
        row.fit_sample_s = row.budgeted_s = time.perf_counter() - started
    log(f"{dataset}/{plugin}: fit {fitted_s:.0f} s, sampled {len(generated)} rows in {row.fit_sample_s - fitted_s:.0f} s; scoring")
    synthetic = renumber_surrogate_keys(decode_from_generation(generated, prepared.profile), prepared.profile)
    if len(generated) < count:
        row.notes.append(f"synthcity's strict sampling returned {len(generated)} of {count} rows")
    settings = ReportConfig(target_column=target, seed=seed)  # the report asset's defaults
    report = build_report(
        prepared.training, prepared.holdout, synthetic, prepared.profile,
        target=settings.target_column, thresholds=settings.thresholds(), privacy_rows=settings.privacy_rows,
        bootstrap_resamples=settings.bootstrap_resamples, seed=settings.seed, risk_attacks=settings.risk_attacks,
        risk_secret=settings.risk_secret,
    )
    fill_from_report(row, report)
    return row


def number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}"


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


COLUMNS = ("dataset", "method", "budget min", "rows train/holdout/synthetic", "wall s (fit+sample)", "wall s (budgeted)",
           "KS mean", "TVD mean", "corr delta", "assoc delta", "detection AUC", "TSTR ratio", "MIA AUC",
           "exact-copy rate", "all green")


def table(rows: list[Row]) -> tuple[str, list[str]]:
    """The markdown table and its footnotes."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    notes: list[str] = []
    for r in rows:
        marks = ""
        for note in r.notes + ([f"error: {r.error}"] if r.error else []):
            notes.append(note if note.startswith(f"{r.dataset}/") else f"{r.dataset}/{r.method}: {note}")
            marks += f"[^{len(notes)}]"
        m = r.metrics
        rows_text = "/".join(str(r.rows.get(k, "?")) for k in ("training", "holdout", "synthetic")) if r.rows else "n/a"
        green = "n/a" if r.all_green is None else ("yes" if r.all_green else "no: " + ", ".join(r.failed))
        cells = [r.dataset, r.method + marks, f"{r.budget_minutes:g}", rows_text, seconds(r.fit_sample_s),
                 seconds(r.budgeted_s), number(m.get("ks_mean")), number(m.get("tvd_mean")),
                 number(m.get("correlation_delta")), number(m.get("association_delta")), number(m.get("detection_auc")),
                 number(m.get("tstr_ratio")), number(m.get("membership_inference_auc")),
                 number(m.get("exact_copy_rate")), green]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), notes


LEGEND = (
    "Same seed, same training rows and holdout, same metric code (`evaluation.report.build_report`, the report's "
    "default settings) for every method. *wall s (budgeted)*: what the budget governs — the whole run for ours "
    "(source, profile, tuning, fit, sampling, report), fit plus sampling for a plain plugin. *wall s (fit+sample)*: "
    "ours' synthetic_table step. Ours generates {ours_rows} (its default num_rows); a plain plugin as many rows as "
    "there are training rows (unless --plain-rows says otherwise). Plain plugins: synthcity's default parameters, fitted on "
    "the platform's NaN-free encoding of the training rows (synthcity takes no missing values or datetimes), cut at "
    "the budget less a sampling reserve, sampled in one pass (strict=False, unless --plain-strict). {green}"
)


def green_rule() -> str:
    """The report's default blocking thresholds, in words (what the "all green" column judges)."""
    c = ReportConfig()
    four = (f"KS mean ≤ {c.ks_mean_max:g}, correlation delta ≤ {c.correlation_delta_max:g}, MIA AUC ≤ {c.mia_auc_max:g}, "
            f"exact-copy rate ≤ {c.exact_copy_rate_max:g}")
    fidelity = f"detection AUC ≤ {c.detection_auc_max:g} and TSTR ratio ≥ {c.tstr_ratio_min:g}"
    if c.fidelity_checks_blocking:
        return f"All green: {four}, {fidelity} (the report's default blocking checks)."
    return f"All green: {four} (the report's default blocking checks; {fidelity} are its non-blocking fidelity checks)."


def ours_rows() -> str:
    """What our job's default num_rows means, in words."""
    rows = GenerationConfig().num_rows
    return "as many rows as training rows" if not rows else f"{rows:,} rows"


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, from {list(DATASETS)}")
    parser.add_argument("--methods", default=None, help=f"comma-separated: ours and synthcity plugin names (default {','.join(METHODS)})")
    parser.add_argument("--budget-minutes", type=float, default=time_budget.DEFAULT_BUDGET_MINUTES,
                        help="the wall-time budget of every method (minutes)")
    parser.add_argument("--budgets", default="", help="curve mode: ours only, at each of these budgets (minutes), e.g. 2,5,15")
    parser.add_argument("--max-rows", type=int, default=0, help="sample at most this many source rows (0: all)")
    parser.add_argument("--plain-rows", type=int, default=0,
                        help=f"rows a plain plugin generates (0: as many as training rows); ours generates {ours_rows()} by default")
    parser.add_argument("--plain-strict", action="store_true",
                        help="plain plugins sample in synthcity's default strict mode (re-sampling without a time bound)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the table here (markdown, with the date and the command)")
    parser.add_argument("--verbose", action="store_true", help="show our job's INFO logs (progress, time left)")
    parser.add_argument("--ours-set", action="append", default=[], metavar="OP.KEY=VALUE",
                        help="a setting of our job's run config over its defaults (VALUE read as JSON when it parses), "
                             "e.g. tuned_hyperparameters.objective=fidelity; repeatable; said in ours' footnote")
    args = parser.parse_args()
    try:
        settings = parse_settings(args.ours_set)
    except ValueError as exc:
        parser.error(f"--ours-set {exc}")

    names = parse_list(args.datasets)
    if unknown := [n for n in names if n not in DATASETS]:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(DATASETS)}")
    if args.budgets:
        try:
            budgets = [float(b) for b in parse_list(args.budgets)]
        except ValueError:
            parser.error(f"--budgets takes minutes separated by commas, got {args.budgets!r}")
        if args.methods and parse_list(args.methods) != ["ours"]:
            parser.error("--budgets (curve mode) runs ours only; leave --methods out or give --methods ours")
        methods = ["ours"]
    else:
        budgets = [args.budget_minutes]
        methods = parse_list(args.methods) if args.methods else list(METHODS)
    if not budgets or any(not math.isfinite(b) or b <= 0 for b in budgets):
        parser.error("budgets must be positive minutes")
    if refused := [m for m in methods if m in NETWORK_PLUGINS]:
        parser.error(f"{refused}: these plugins download models; this benchmark never touches the network")
    if args.max_rows < 0 or args.plain_rows < 0:
        parser.error("--max-rows and --plain-rows must be 0 (the default) or positive")
    plain = [m for m in methods if m != "ours"]
    if plain:
        known = set(plugin_loader(plain[0]).list()) | set(generators.synthcity_plugins().list()) | {ARFPY}
        if unknown := [m for m in plain if m not in known]:
            parser.error(f"unknown method(s) {unknown}: 'ours', {ARFPY!r} or a synthcity plugin")

    command = shown_command([".venv/bin/python", *sys.argv])
    rows: list[Row] = []
    log(f"{len(names)} dataset(s) × {methods} at {budgets} min, seed {args.seed}" + (f", at most {args.max_rows} rows" if args.max_rows else ""))
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"fidelity-{name}-") as tmp:
            work = Path(tmp)
            (work / "sources").mkdir()
            source = source_for(name, work / "sources")
            prepared: Prepared | None = None
            if "ours" in methods:
                for budget in budgets:
                    log(f"{name}/ours ({budget:g} min): start")
                    try:
                        row, ours_prepared = run_ours(name, source, work / f"ours-{budget:g}", budget=budget, seed=args.seed,
                                                      max_rows=args.max_rows, verbose=args.verbose, settings=settings)
                        if prepared and ours_prepared and prepared.fingerprint != ours_prepared.fingerprint:
                            log(f"{name}/ours: WARNING the sample differs between budgets (fingerprints differ)")
                        prepared = prepared or ours_prepared
                    except Exception as exc:  # noqa: BLE001 - one failed method must not end the benchmark
                        row = Row(name, "ours", budget, error=f"{type(exc).__name__}")
                        log(f"{name}/ours: failed\n{traceback.format_exc()}")
                    rows.append(row)
                    log(f"{name}/ours ({budget:g} min): done in {seconds(row.budgeted_s)} s, all green: {row.all_green}"
                        + (f", {row.error}" if row.error else ""))
            if plain:
                if prepared is None:
                    log(f"{name}: sampling and profiling (our job's first two steps) for the plain methods")
                    prepared = prepare(name, source, work / "prepare", seed=args.seed, max_rows=args.max_rows, verbose=args.verbose)
                for plugin in plain:
                    log(f"{name}/{plugin} ({budgets[0]:g} min): start, {len(prepared.encoded)} training rows")
                    try:
                        row = run_plain(plugin, prepared, budget=budgets[0], seed=args.seed, target=DATASETS[name][2], dataset=name,
                                        rows=args.plain_rows, strict=args.plain_strict)
                    except Exception as exc:  # noqa: BLE001
                        row = Row(name, plugin, budgets[0], error=f"{type(exc).__name__}: {str(exc)[:200]}")
                        log(f"{name}/{plugin}: failed\n{traceback.format_exc()}")
                    rows.append(row)
                    log(f"{name}/{plugin}: done in {seconds(row.budgeted_s)} s, all green: {row.all_green}")
    text, notes = table(rows)
    footnotes = "\n".join(f"[^{i}]: {note}" for i, note in enumerate(notes, start=1))
    legend = LEGEND.format(ours_rows=ours_rows(), green=green_rule())
    print(text + "\n\n" + legend + ("\n\n" + footnotes if footnotes else ""))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        mode = "curve, ours at several budgets" if args.budgets else "side by side"
        args.out.write_text(
            f"# Fidelity benchmark: {mode}\n\nDate: {dt.date.today().isoformat()}  \nCommand: `{command}`\n\n"
            f"{text}\n\n{legend}\n" + (f"\n{footnotes}\n" if footnotes else ""), encoding="utf-8")
        log(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
