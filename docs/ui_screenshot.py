"""Make docs/two_chains.png: the Dagster UI's global asset lineage with two tables' chains side by side.

    .venv/bin/python docs/ui_screenshot.py --out docs/two_chains.png

What it does: writes a temporary tables file with two entries (`adult` and `patients`, both reading the embedded
`adult` table; nothing is materialized), a temporary DAGSTER_HOME holding a copy of dagster.yaml, starts
`.venv/bin/dagster-webserver` on a free port of 127.0.0.1 with SYNTH_TABLES_FILE pointing at that file, waits for
it to answer, checks over GraphQL that both groups' assets are loaded, has headless Chromium screenshot the asset
lineage page (both groups expanded), checks the captured DOM shows every node of both chains, and stops the
webserver (and its code server) however it ends. Takes about 20 s.

The default window, 2200x1300, is about the smallest at which the UI's zoom-to-fit keeps the nodes in full detail
(below a zoom of 0.6 it draws them as bare, shortened labels, and the check fails).

Needs Chromium (`apt-get install chromium`; or point --chromium / $CHROMIUM at another Chrome binary). Everything
stays on loopback: no download, telemetry off.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLES = ("adult", "patients")
STEPS = ("source_sample", "profiled_dataset", "tuned_hyperparameters", "synthetic_table", "privacy_utility_report",
         "best_synthetic_table")
TABLES_YAML = """\
# Written by docs/ui_screenshot.py: two chains over the embedded Adult table.
tables:
  - name: adult
    description: UCI Adult census rows in the embedded SQLite database
    table: adult
    schedule: "0 3 * * *"
  - name: patients
    description: A second chain (here over the same embedded table) to show chains side by side
    table: adult
    schedule: "0 4 * * *"
"""
# The global asset lineage page of Dagster 1.13's UI (every group's assets in one graph), with both groups expanded
# (the page shows groups collapsed unless `expanded` names their ids, `global@global:<group>` in 1.13).
PAGE = "/asset-groups?expanded=" + ",".join(f"global@global:{table}" for table in TABLES)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for_server(base: str, server: subprocess.Popen, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {server.returncode}; its log:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(1)
    raise TimeoutError(f"dagster-webserver did not answer on {base}/server_info within {timeout_s:.0f} s; its log:\n"
                       f"{log.read_text()[-4000:]}")


def wait_for_assets(base: str, timeout_s: float) -> list[str]:
    """The loaded asset keys, once every step of both chains is there (the code location loads after the server)."""
    expected = {f"{table}/{step}" for table in TABLES for step in STEPS}
    deadline = time.monotonic() + timeout_s
    keys: list[str] = []
    errors = None
    while time.monotonic() < deadline:
        try:
            result = graphql(base, "{ assetNodes { assetKey { path } groupName } }")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError) as error:
            result = {"errors": [repr(error)]}
        errors = result.get("errors")
        nodes = (result.get("data") or {}).get("assetNodes") or []
        keys = sorted("/".join(node["assetKey"]["path"]) for node in nodes)
        groups = {node["groupName"] for node in nodes}
        if expected <= set(keys) and set(TABLES) <= groups:
            return keys
        time.sleep(2)
    raise TimeoutError(f"the code location did not load both chains within {timeout_s:.0f} s: missing "
                       f"{sorted(expected - set(keys))}; GraphQL errors: {errors}")


def screenshot(chromium: str, url: str, out: Path, width: int, height: int, budget_ms: int, timeout_s: float) -> str:
    """Screenshot `url` into `out` with headless Chromium; returns the page's DOM as rendered when it was taken.

    The UI is a JS app that renders after its GraphQL queries and the graph layout (a web worker) finish; the virtual
    time budget lets the page run that long (virtual time waits on pending network) before the capture.
    """
    with tempfile.TemporaryDirectory(prefix="ui_screenshot_chromium_") as profile:
        command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                   "--disable-background-networking", "--disable-component-update", "--metrics-recording-only",
                   f"--user-data-dir={profile}", f"--window-size={width},{height}",
                   f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", "--dump-dom", url]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def check_rendered(dom: str) -> None:
    """Both chains drawn as full asset nodes (a node's name as its label, once per chain) and no dialog over them."""
    missing = [step for step in STEPS if dom.count(f">{step}<") < len(TABLES)]
    if missing or "Join the Dagster community" in dom:
        raise RuntimeError(f"the captured page does not show both chains in full (labels missing: {missing}; "
                           "zoomed-out nodes show shortened labels): try a larger --width/--height or --budget-ms")


def stop(server: subprocess.Popen) -> None:
    """Stop the webserver and its code server: the whole process group of its session."""
    if server.poll() is None:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        except ProcessLookupError:
            pass
    try:  # the code server may outlive the webserver briefly
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "two_chains.png")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM") or shutil.which("chromium")
                        or shutil.which("chromium-browser") or shutil.which("google-chrome") or "chromium")
    parser.add_argument("--path", default=PAGE, help=f"UI page to capture (default {PAGE})")
    parser.add_argument("--width", type=int, default=2200)
    parser.add_argument("--height", type=int, default=1300)
    parser.add_argument("--budget-ms", type=int, default=20000, help="Chromium's virtual time budget for the page")
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for the server and code location")
    args = parser.parse_args(argv)
    if shutil.which(args.chromium) is None:
        parser.error(f"no Chromium at {args.chromium!r}: apt-get install chromium, or give --chromium")
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="ui_screenshot_") as tmp:
        tmpdir = Path(tmp)
        home = tmpdir / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        # The UI's "Join the Dagster community" dialog shows on a fresh instance until this file exists.
        (home / ".nux").mkdir()
        (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
        tables = tmpdir / "tables.yaml"
        tables.write_text(TABLES_YAML)
        log = tmpdir / "webserver.log"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DAGSTER_HOME": str(home), "SYNTH_TABLES_FILE": str(tables),
               "DAGSTER_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "TQDM_DISABLE": "1"}
        webserver = REPO / ".venv" / "bin" / "dagster-webserver"
        with open(log, "w") as log_file:
            server = subprocess.Popen([str(webserver), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                                      cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            wait_for_server(base, server, args.timeout, log)
            keys = wait_for_assets(base, args.timeout)
            print(f"webserver on {base}: {len(keys)} assets loaded, groups {', '.join(TABLES)}", file=sys.stderr)
            url = base + args.path
            shot = tmpdir / "screenshot.png"  # moved to --out once checked: a failed try leaves --out as it was
            dom = screenshot(args.chromium, url, shot, args.width, args.height, args.budget_ms, timeout_s=180)
            check_rendered(dom)
            shutil.move(shot, out)
        finally:
            stop(server)
    print(f"{out} ({out.stat().st_size // 1024} KiB) of {url} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
