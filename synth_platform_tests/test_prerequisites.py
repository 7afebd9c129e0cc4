"""`make` names every missing prerequisite with the command that installs or starts it, before building anything."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

from synth_platform_tests.conftest import REPO

SCRIPT = REPO / "scripts" / "prerequisites.sh"


def _closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once closed: nothing listens there


def _bare_path(tmp_path) -> str:
    """A PATH with bash and a Python 3.11 only (no Chromium)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").symlink_to(sys.executable)
    return str(bin_dir)


def _run(what: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), what], env=env, capture_output=True, text=True, timeout=60)


def test_a_machine_without_chromium_or_postgresql_is_told_what_to_run(tmp_path):
    env = {"PATH": _bare_path(tmp_path), "PGPORT": str(_closed_loopback_port())}
    done = _run("test", env)
    assert done.returncode == 2
    assert "apt-get install -y --no-install-recommends chromium" in done.stderr
    assert f"PostgreSQL on 127.0.0.1:{env['PGPORT']}" in done.stderr and "pg_ctlcluster" in done.stderr
    assert _run("install", env).returncode == 0  # the main job needs neither


def test_a_python_other_than_3_11_is_named_with_the_fix(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = -c ]; then case \"$2\" in *platform*) echo 3.9.2;; *) exit 1;; esac; fi\n")
    fake.chmod(0o755)
    done = _run("install", {"PATH": os.environ["PATH"], "PYTHON": str(fake)})
    assert done.returncode == 2 and "is 3.9.2" in done.stderr and "make PYTHON=" in done.stderr
    missing = _run("install", {"PATH": os.environ["PATH"], "PYTHON": str(tmp_path / "no-such-python")})
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_this_machine_has_what_the_tests_need():
    assert _run("test", {**os.environ, "PYTHON": sys.executable}).returncode == 0
