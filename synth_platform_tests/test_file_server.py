"""The report pages' file server: it shows the allow-listed pages and nothing else of the platform root, on
loopback only, and the assets link to what it shows."""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request

import pytest

from synth_platform.file_server import FILES_URL_ENV, link_for, make_server

RUN = "3f1c2a9e-52b4-4c1e-9d0a-8c6f1e2b7a10"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24  # a PNG's signature: what the server sends is checked byte for byte


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "synth_platform"
    run = root / "runs" / RUN
    (run / "great_expectations" / "validations").mkdir(parents=True)
    (run / "privacy_utility_report.html").write_text("<html>report</html>")
    (run / "privacy_utility_report_headline.png").write_bytes(PNG)
    (run / "other_plot.png").write_bytes(PNG)
    (run / "privacy_utility_report.png").write_bytes(PNG)
    (run / "great_expectations" / "index.html").write_text("<html>docs</html>")
    (run / "great_expectations" / "validations" / "v1.html").write_text("<html>validation</html>")
    (run / "synthetic_table.csv").write_text("a,b\n1,2\n")
    (run / "profile.json").write_text("{}")
    (root / "reports").mkdir()
    (root / "reports" / "latest.html").write_text("<html>latest</html>")
    (root / "reports" / "privacy_utility_report_headline.png").write_bytes(PNG)
    (root / "privacy_utility_report_headline.png").write_bytes(PNG)
    (root / "workspace" / RUN).mkdir(parents=True)
    (root / "workspace" / RUN / "privacy_utility_report_headline.png").write_bytes(PNG)
    (root / "embedded_source.sqlite").write_text("source rows")
    (root / "audit.sqlite3").write_text("audit")
    (root / "workspace" / RUN / "privacy_utility_report.html").write_text("training rows")
    secret = tmp_path / "outside.html"
    secret.write_text("outside the root")
    (root / "runs" / "linked").mkdir()
    (root / "runs" / "linked" / "privacy_utility_report.html").symlink_to(secret)
    server = make_server(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def _get_bytes(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, "", b""


def test_it_shows_the_headline_plot_of_a_run_as_a_png(served):
    _, base = served
    assert _get_bytes(f"{base}/runs/{RUN}/privacy_utility_report_headline.png") == (200, "image/png", PNG)


def test_it_shows_the_report_pages_and_data_docs(served):
    _, base = served
    assert _get(f"{base}/runs/{RUN}/privacy_utility_report.html") == (200, "<html>report</html>")
    assert _get(f"{base}/runs/{RUN}/great_expectations/index.html") == (200, "<html>docs</html>")
    assert _get(f"{base}/runs/{RUN}/great_expectations/validations/v1.html")[0] == 200
    assert _get(f"{base}/reports/latest.html") == (200, "<html>latest</html>")


@pytest.mark.parametrize("path", [
    "/embedded_source.sqlite", "/audit.sqlite3", f"/runs/{RUN}/synthetic_table.csv", f"/runs/{RUN}/profile.json",
    f"/workspace/{RUN}/privacy_utility_report.html", "/runs/linked/privacy_utility_report.html",
    f"/runs/{RUN}/../../audit.sqlite3", f"/runs/{RUN}/%2e%2e/%2e%2e/audit.sqlite3", "/", "/runs/", f"/runs/{RUN}/",
    f"/runs/{RUN}/great_expectations/../../../embedded_source.sqlite",
    # Only the headline plot of a run is a PNG it shows (and Data Docs' own images): no other PNG, nor that name
    # elsewhere.
    f"/runs/{RUN}/other_plot.png", f"/runs/{RUN}/privacy_utility_report.png",
    "/reports/privacy_utility_report_headline.png", "/privacy_utility_report_headline.png",
    f"/workspace/{RUN}/privacy_utility_report_headline.png", f"/runs/{RUN}/privacy_utility_report_headline.png.bak",
    f"/runs/{RUN}/sub/privacy_utility_report_headline.png",
])
def test_nothing_else_of_the_root_is_reachable(served, path):
    _, base = served
    assert _get(base + path)[0] == 404


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.org", ""])
def test_it_binds_to_loopback_only(tmp_path, host):
    with pytest.raises(ValueError, match="loopback address only"):
        make_server(tmp_path, host=host)  # refused before any socket is opened


def test_links_point_at_what_it_shows(served, monkeypatch):
    root, base = served
    report = root / "runs" / RUN / "privacy_utility_report.html"
    monkeypatch.delenv(FILES_URL_ENV, raising=False)
    assert link_for(report, root) is None  # no server configured: no link (a file:// link would open nothing)
    monkeypatch.setenv(FILES_URL_ENV, base + "/")
    assert link_for(report, root) == f"{base}/runs/{RUN}/privacy_utility_report.html"
    assert _get(link_for(report, root))[0] == 200
    assert link_for(root / "runs" / RUN / "synthetic_table.csv", root) is None
    headline = root / "runs" / RUN / "privacy_utility_report_headline.png"
    assert link_for(headline, root) == f"{base}/runs/{RUN}/privacy_utility_report_headline.png"
    assert _get_bytes(link_for(headline, root))[:2] == (200, "image/png")
    assert link_for(root / "runs" / RUN / "other_plot.png", root) is None
    assert link_for(root.parent / "elsewhere.html", root) is None
    assert os.environ[FILES_URL_ENV] == base + "/"
