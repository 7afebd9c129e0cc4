"""`make ui` as a person uses it: it starts quietly (no avoidable warning) on the port asked for, on loopback, with
the report pages' file server beside it, and Ctrl-C stops it, with every process it started, within seconds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from synth_platform_tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command and int(pid) != os.getpid():
            found.append(f"{pid}: {command[:200]}")
    return found


def test_make_ui_starts_quietly_and_stops_on_ctrl_c(tmp_path):
    port, files_port, home = _free_port(), _free_port(), tmp_path / "dagster_home"
    log = tmp_path / "ui.log"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    # A new session, as a terminal's foreground job: Ctrl-C is SIGINT to the whole process group.
    with log.open("w") as out:
        make = subprocess.Popen(["make", "ui", f"UI_PORT={port}", f"FILES_PORT={files_port}"], cwd=REPO, env=env, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert make.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the UI did not answer in 180 s:\n" + log.read_text()[-3000:]
                time.sleep(1)
        # The report pages' file server answers beside it (no report yet: a 404 from it, not a refused connection).
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{files_port}/reports/latest.html", timeout=5)
        except urllib.error.HTTPError as error:
            assert error.code == 404
        pressed = time.monotonic()
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=60)
        stopped = time.monotonic() - pressed
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    for _ in range(20):  # the last children may take a moment to be reaped
        left = _processes_mentioning(str(home))
        if not left:
            break
        time.sleep(0.5)
    assert not left, left
    assert stopped < 30, stopped
    text = log.read_text()
    assert "SupersessionWarning" not in text and "Found a dagster instance configuration value" not in text, text[-3000:]
    assert "Warning" not in text.replace("PYTHONWARNINGS", ""), text[-3000:]
