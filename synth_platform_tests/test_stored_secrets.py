"""No password, in any form the platform accepts, is stored anywhere; no file that holds rows or credentials is
readable by other users. The whole chain runs through `dagster asset materialize` (as the README runs it) with a
password in every store's URL, then every file under DAGSTER_HOME, every row of the PostgreSQL stores (Optuna,
audit, tuning memory), the run and event storage and the MLflow store are searched for each password."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import sys
import urllib.parse
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from synth_platform_tests.conftest import REPO, TINY_RUN_CONFIG

# One password per store and form; trust auth ignores them all.
SOURCE_PW = "Src:pw@1f/#Hx"  # userinfo, percent-encoded (every reserved character in it)
OPTUNA_PW = "optuna-QP-5dd1"  # ?password= in the query
AUDIT_PW = "Audit@pw-73ce"  # userinfo
MEMORY_PW = "memory-pw-9a02"  # userinfo
QUERY_PW = "query-pw-41be"  # the source's ?password=
RAW_AT_PW = "raw@at-pw-6c"  # a raw @ in the userinfo: user:raw@at-pw-6c@host
SEPARATE_PW = "separate-pw-0f3"  # SYNTH_SOURCE_PASSWORD
PASSFILE = "/nonexistent/secret-passfile-b7"  # ?passfile=: a path, but nothing to show either
SECRETS = (SOURCE_PW, OPTUNA_PW, AUDIT_PW, MEMORY_PW, QUERY_PW, RAW_AT_PW, SEPARATE_PW, PASSFILE)


def _forms(secret: str) -> set[str]:
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret), urllib.parse.quote(secret)}


def _with_password(url: str, password: str) -> str:
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


def _materialize(home: Path, env: dict[str, str], select: str, config: dict) -> subprocess.CompletedProcess:
    dagster = Path(sys.executable).with_name("dagster")
    return subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "synth_platform.definitions", "--select", select,
         "--config-json", json.dumps(config)],
        cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home), "TQDM_DISABLE": "1", **env},
        capture_output=True, text=True, timeout=1200,
    )


def _rows_of_every_table(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = [r[0] for r in conn.execute(sa.text("SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"))]
            return "\n".join(f"{table}: {row[0]}" for table in tables for row in conn.execute(sa.text(f"SELECT t::text FROM {table} t")))
    finally:
        engine.dispose()


def _readable_by_others(path: Path, top: Path) -> bool:
    """Whether a user other than the owner (and not in its group) can read `path`: its mode lets them, and so does
    every directory from `top` down to it."""
    directories = [d for d in path.parents if d == top or top in d.parents]
    return bool(path.stat().st_mode & stat.S_IROTH) and all(d.stat().st_mode & stat.S_IXOTH for d in directories)


def test_no_password_in_any_store_and_no_private_file_open_to_others(pg_database, adult_small, tmp_path):
    engine = sa.create_engine(pg_database)
    adult_small.to_sql("patients", engine, index=False)
    engine.dispose()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    stores = {
        "SYNTH_OPTUNA_STORAGE": f"{pg_database}?password={OPTUNA_PW}",
        "SYNTH_AUDIT_URL": _with_password(pg_database, AUDIT_PW),
        "SYNTH_TUNING_MEMORY_URL": _with_password(pg_database, MEMORY_PW),
    }
    config = copy.deepcopy(TINY_RUN_CONFIG)
    config["ops"]["source_sample"]["config"]["table"] = "patients"
    config["ops"]["privacy_utility_report"]["config"].update(
        ks_mean_max=1.0, correlation_delta_max=1.0, mia_auc_max=1.0, exact_copy_rate_max=1.0)
    whole = _materialize(home, {**stores, "SYNTH_SOURCE_URL": _with_password(pg_database, SOURCE_PW)}, "*", config)
    assert whole.returncode == 0, whole.stderr[-5000:]

    only_sample = {"ops": {"source_sample": config["ops"]["source_sample"]}}
    user = sa.make_url(pg_database).username
    other_forms = {
        "query": ({"SYNTH_SOURCE_URL": f"{pg_database}?password={QUERY_PW}"}, 0),
        "separate": ({"SYNTH_SOURCE_URL": pg_database, "SYNTH_SOURCE_PASSWORD": SEPARATE_PW}, 0),
        "passfile": ({"SYNTH_SOURCE_URL": f"{pg_database}?passfile={PASSFILE}"}, 0),
        # SQLAlchemy alone would read `raw` as the password and `at-pw-6c@127.0.0.1` as the host
        "raw @": ({"SYNTH_SOURCE_URL": pg_database.replace(f"{user}@", f"{user}:{RAW_AT_PW}@")}, 0),
    }
    outputs = [whole.stdout + whole.stderr]
    for name, (env, code) in other_forms.items():
        done = _materialize(home, {**stores, **env}, "adult/source_sample", only_sample)
        assert done.returncode == code, (name, done.stderr[-3000:])
        outputs.append(done.stdout + done.stderr)

    pg_rows = _rows_of_every_table(pg_database)
    assert "public.trial_params: " in pg_rows and "public.studies: " in pg_rows  # the scan sees the Optuna store,
    assert "public.synth_source_audit: " in pg_rows and ":***@" in pg_rows  # the audit (masked source URLs)
    assert "public.synth_tuning_memory: " in pg_rows  # and the tuning memory
    stored = ["\n".join(outputs), pg_rows]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 5
        for run in runs:
            stored.append(dg.serialize_value(run))
            stored.extend(dg.serialize_value(event) for event in instance.all_logs(run.run_id))
    files = [p for p in home.rglob("*") if p.is_file()]
    stored.extend(p.read_bytes().decode("utf-8", errors="replace") for p in files)
    everything = "\n".join(stored)
    assert any("mlflow" in p.parts for p in files)  # the MLflow store is among the files scanned
    for secret in SECRETS:
        for form in _forms(secret):
            assert form not in everything, f"{secret!r} ({form!r}) is stored"

    platform_root = home / "synth_platform"
    private = [p for p in files if platform_root in p.parents or (home / "storage") in p.parents]
    assert any((home / "storage") in p.parents for p in private) and any(platform_root in p.parents for p in private)
    open_to_others = [str(p.relative_to(home)) for p in private if _readable_by_others(p, home)]
    assert not open_to_others, f"readable by other users: {open_to_others}"
