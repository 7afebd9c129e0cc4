"""The report asset as a person sees it: headless Chromium, 1600 px wide, against a real `make ui` (`dagster dev`
and the report pages' file server) on free loopback ports, after one tiny real run of the adult chain. The links
of its metadata are anchors whose targets open, its headline plot is an image shown in the page without a click
(a PNG the file server serves), and its verdict table is fully visible.

The page checked is the asset's Events tab (`?view=events`), where Dagster shows the latest materialization's
metadata in full (the verdict table gets about 610 px there). Not checked: its Overview tab, which shows the same
metadata table in a narrower left column (881 px wide at 1600 px, of which the key and timestamp columns take
about 450), where no table with the metric names (up to 24 characters, unbreakable) and five columns fits, and
where Dagster's own `path` entry of the IO manager (an unbreakable file path) alone makes the metadata table wider
than its column."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from synth_platform_tests.conftest import REPO, tiny_config
from synth_platform_tests.helpers.cdp import LOOPBACK, Browser, chromium, free_port

WIDTH, HEIGHT = 1600, 1200
REPORT_PAGE = "/assets/adult/privacy_utility_report?view=events"
CONTRACT_CHECK_PAGE = "/assets/adult/synthetic_table?view=checks&checkDetail=synthetic_table_meets_source_contract"
HEADLINE_ALT = "Checks: value, 95% interval and threshold"

# JavaScript run in the page: the metadata row of an entry (its key cell's text), and what the checks measure.
ROW = """var row = key => [...document.querySelectorAll('tr')].find(
  r => r.children.length > 1 && r.children[0].innerText.trim() === key);"""
VERDICTS_SHOWN = ROW + "(() => { const r = row('verdicts'); const t = r && r.querySelector('table');"\
    " return !!t && t.querySelectorAll('tbody tr').length >= 6 && !!row('report_page'); })()"
ANCHORS = ROW + """(key => [...row(key).querySelectorAll('a[href]')].map(a => [a.href, a.innerText.trim()]))"""
EXTERNAL_ANCHORS = ROW + """(key => { const table = row(key).closest('table');
  return [...table.querySelectorAll('a[href]')].map(a => a.href).filter(h => !h.startsWith(location.origin)); })"""
# The headline plot's <img> in its own metadata row (no dialog, nothing clicked), once loaded and decoded.
HEADLINE_IMAGE = ROW + """(() => { const r = row('headline_plot'); if (!r) return null;
  const img = [...r.querySelectorAll('img')].find(i => i.alt === %s);
  if (!img || !img.complete || !img.naturalWidth) return null; const box = img.getBoundingClientRect();
  return {src: img.src, natural: [img.naturalWidth, img.naturalHeight], shown: [box.width, box.height],
          visible: box.width > 0 && box.height > 0 && getComputedStyle(img).visibility !== 'hidden'}; })()
""" % json.dumps(HEADLINE_ALT)
SHOW_MARKDOWN_LINKS = ROW + """(key => [...row(key).querySelectorAll('a')].filter(
  a => a.innerText.trim() === '[Show Markdown]').length)"""
# The verdict table, its scroll container (the nearest ancestor that scrolls or clips sideways), their edges.
TABLE_LAYOUT = ROW + """(key => {
  const table = row(key).querySelector('table');
  let box = table.parentElement;
  while (box !== document.body && !['auto', 'scroll', 'hidden'].includes(getComputedStyle(box).overflowX)) box = box.parentElement;
  const edges = e => { const r = e.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.right)]; };
  return {viewport: innerWidth, table: edges(table), tableScroll: [table.scrollWidth, table.clientWidth],
          container: edges(box), containerScroll: [box.scrollWidth, box.clientWidth, box.scrollLeft],
          columns: [...table.querySelectorAll('thead th')].map(th => [th.innerText, ...edges(th)])};
})"""
BEST_PAGE = "/assets/adult/best_synthetic_table?view=events"


def _get(url: str) -> tuple[int, str, str]:
    status, content_type, body = _get_bytes(url)
    return status, content_type, body.decode(errors="replace")


def _get_bytes(url: str) -> tuple[int, str, bytes]:
    with LOOPBACK.open(url, timeout=10) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


def _materialize(home: Path, files_url: str, log: Path) -> str:
    """One tiny real run of the adult chain into `home`, its links pointing at `files_url`; the run's id. Every
    threshold at its loosest, so the run is all green and the auto-optimizer sensor of `dagster dev` starts no re-run
    while the test looks at the page."""
    loosest = {"ks_mean_max": 1.0, "correlation_delta_max": 1.0, "mia_auc_max": 1.0, "exact_copy_rate_max": 1.0}
    (home / "run_config.json").write_text(json.dumps(tiny_config(privacy_utility_report=loosest)))
    env = {**os.environ, "DAGSTER_HOME": str(home), "SYNTH_FILES_URL": files_url}
    with log.open("w") as out:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "synth_platform.definitions",
             "-j", "adult_synthesis_job", "-c", str(home / "run_config.json")],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=150,
        )
    assert done.returncode == 0, log.read_text()[-4000:]
    return json.loads((home / "synth_platform" / "reports" / "latest.json").read_text())["run_id"]


def _ours(home: Path) -> list[int]:
    """Processes `make ui` started for this test: their working directory is its DAGSTER_HOME, or they name it."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            command = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if int(pid) != os.getpid() and (cwd == str(home) or str(home) in command):
            found.append(int(pid))
    return found


@contextlib.contextmanager
def _make_ui(home: Path, ui_port: int, files_port: int, log: Path):
    """`make ui` on these ports, as a person starts it; stopped as Ctrl-C stops it (SIGINT to its process group),
    then anything of it still running killed, even when the test fails."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with log.open("w") as out:
        # -o .venv/.installed: the venv counts as installed; the test must never reach a package index.
        make = subprocess.Popen(["make", "-o", ".venv/.installed", "ui", f"UI_PORT={ui_port}", f"FILES_PORT={files_port}"],
                                cwd=REPO, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                LOOPBACK.open(f"http://127.0.0.1:{ui_port}/server_info", timeout=2).close()
                break
            except OSError:
                assert make.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, "the UI did not answer in 90 s:\n" + log.read_text()[-4000:]
                time.sleep(1)
        yield f"http://127.0.0.1:{ui_port}"
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)
            try:
                make.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(make.pid, signal.SIGKILL)
                make.wait(timeout=10)
        for _ in range(20):  # scripts/ui.sh stops its process groups within its grace time; the last may linger
            left = _ours(home)
            if not left:
                break
            time.sleep(0.5)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _check_links(browser: Browser, ui: str, files_url: str, run_id: str, page: str, key: str, expected: str) -> None:
    """The url entry `key` on `page` is shown as an anchor to `expected` (or under it, a prefix ending in /), and
    that target answers 200 with an HTML page."""
    browser.open(ui + page)
    browser.wait_for(ROW + f"!!row({json.dumps(key)})", what=f"the metadata entry {key} on {page}")
    anchors = browser.evaluate(ANCHORS + f"({json.dumps(key)})")
    matching = {href for href, _ in anchors if href == expected or (expected.endswith("/") and href.startswith(expected))}
    assert matching, f"{key} is not an anchor to {expected}: anchors (href, text) {anchors}"
    # The URL people read is the one its anchor opens.
    assert any(href == text for href, text in anchors if href in matching), anchors
    for href in matching:
        status, content_type, body = _get(href)
        assert status == 200 and content_type.startswith("text/html") and "<html" in body.lower(), (href, status, content_type)
        if key == "report_page":
            assert run_id in body, f"{href} is not the report of run {run_id}"
    outside = [h for h in browser.evaluate(EXTERNAL_ANCHORS + f"({json.dumps(key)})") if not h.startswith(files_url + "/")]
    assert not outside, f"metadata anchors not served by the file server {files_url}: {outside}"


def _assert_table_fits(browser: Browser, key: str) -> None:
    """The table entry `key` is fully visible at WIDTH px: inside the viewport and the visible part of its scroll
    container (not scrolled), no column cut off, nothing overflowing inside the table."""
    layout = browser.evaluate(TABLE_LAYOUT + f"({json.dumps(key)})")
    assert layout["viewport"] == WIDTH, layout
    visible_right = min(layout["viewport"], layout["container"][1])
    cut = [name for name, left, right in layout["columns"] if right > visible_right]
    assert layout["containerScroll"][2] == 0, layout
    assert layout["container"][0] <= layout["table"][0] and layout["table"][1] <= visible_right and not cut, (
        f"the {key} table is cut off at {WIDTH} px: it spans x={layout['table'][0]}..{layout['table'][1]}, its "
        f"scroll container shows x={layout['container'][0]}..{layout['container'][1]} (scrollWidth "
        f"{layout['containerScroll'][0]} > clientWidth {layout['containerScroll'][1]}); columns cut off: {cut}; "
        f"columns (name, left, right): {layout['columns']}")
    assert layout["tableScroll"][0] <= layout["tableScroll"][1], layout


def test_report_asset_in_chromium_links_open_plot_is_an_image_tables_fit(tmp_path):
    chromium()  # fails with "apt-get install chromium" before anything starts
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    ui_port, files_port = free_port(), free_port()
    files_url = f"http://127.0.0.1:{files_port}"
    run_id = _materialize(home, files_url, tmp_path / "materialize.log")

    with _make_ui(home, ui_port, files_port, tmp_path / "ui.log") as ui, Browser(tmp_path, WIDTH, HEIGHT) as browser:
        browser.open(ui + REPORT_PAGE)
        browser.wait_for(VERDICTS_SHOWN, what="the latest materialization's metadata with its verdict table")

        # (c) The verdict table, fully visible at 1600 px: inside the viewport and inside the visible part of its
        # scroll container (which is not scrolled), no column cut off, nothing overflowing inside the table.
        _assert_table_fits(browser, "verdicts")
        # Every metric with its interval (the summary), also a table shown whole without a click.
        _assert_table_fits(browser, "summary")
        assert not browser.evaluate(SHOW_MARKDOWN_LINKS + "('summary')"), "the summary is behind a [Show Markdown] link"

        # (b) The headline plot, an image shown in its metadata row without any click. Dagster 1.13 renders a
        # markdown entry inline only when it is shorter than 1,000 characters (ui-core MetadataEntry.tsx:
        # `expandSmallValues && entry.mdStr.length < 1000`), else behind a "[Show Markdown]" link; under `make ui`
        # the entry is a short image link to the plot's PNG on the file server, so it is inline. Nothing is clicked.
        image = browser.wait_for(HEADLINE_IMAGE, timeout=20,
                                 what=f"the headline plot as a decoded <img alt={HEADLINE_ALT!r}> in the headline_plot row")
        assert not browser.evaluate(SHOW_MARKDOWN_LINKS + "('headline_plot')"), "headline_plot is behind a [Show Markdown] link"
        assert image["src"] == f"{files_url}/runs/{run_id}/privacy_utility_report_headline.png", image
        assert image["visible"] and image["shown"][0] >= 400 and image["shown"][1] >= 100, image
        assert image["natural"][0] >= 400 and image["natural"][1] >= 200, image
        status, content_type, png = _get_bytes(image["src"])
        assert (status, content_type) == (200, "image/png") and png.startswith(b"\x89PNG\r\n\x1a\n"), (status, content_type)

        # (a) The links: anchors whose targets the file server serves (the report's page; the Data Docs of the
        # contract check, on the report's upstream synthetic table).
        _check_links(browser, ui, files_url, run_id, REPORT_PAGE, "report_page",
                     f"{files_url}/runs/{run_id}/privacy_utility_report.html")
        _check_links(browser, ui, files_url, run_id, CONTRACT_CHECK_PAGE, "data_docs_page",
                     f"{files_url}/runs/{run_id}/great_expectations/")

        # The chain's history of attempts on the best attempt's page: a table shown whole, without a click.
        browser.open(ui + BEST_PAGE)
        browser.wait_for(ROW + "(() => { const r = row('history'); return !!r && !!r.querySelector('table tbody tr'); })()",
                         what="the best attempt's metadata with its history table")
        _assert_table_fits(browser, "history")
