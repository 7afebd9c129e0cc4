"""A read-only HTTP server on loopback for the report pages the platform writes, so the UI's links open.

A browser does not open a `file://` link from an `http://` page (the Dagster UI), and Dagster shows a path as text
to copy. `make ui` starts this server beside `dagster dev` and sets `SYNTH_FILES_URL`; the assets then add links
(`MetadataValue.url`) to the pages it serves.

It serves an allow-list, not a directory: the HTML report of a run (and `reports/latest.html`), the PNG of its
headline plot (shown inline by the report asset's metadata) and Great Expectations' Data Docs of a run's contract
check. Nothing else under the platform root is reachable — the embedded source database, the audit log, the
tuning memory, generator workspaces, sealed asset values and the synthetic tables stay files (when in doubt, left
out). Paths with `..`, and files whose real location (symlinks resolved) is outside the root, are refused. It binds
to a loopback address only.

    python -m synth_platform.file_server --root "$DAGSTER_HOME/synth_platform" --port 3001
"""

from __future__ import annotations

import argparse
import ipaddress
import mimetypes
import os
import re
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

FILES_URL_ENV = "SYNTH_FILES_URL"
RUN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,80}"
ALLOWED = (
    re.compile(rf"^runs/{RUN}/privacy_utility_report\.html$"),
    # The report's headline plot (metric values, intervals, thresholds; no source value), which the asset's
    # `headline_plot` metadata shows inline in the UI. No other PNG of a run.
    re.compile(rf"^runs/{RUN}/privacy_utility_report_headline\.png$"),
    re.compile(r"^reports/latest\.html$"),
    re.compile(rf"^runs/{RUN}/great_expectations/(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]+\.(?:html|css|js|png|svg|ico|woff2?|ttf)$"),
)


def allowed(relative: str) -> bool:
    return ".." not in relative.split("/") and any(pattern.match(relative) for pattern in ALLOWED)


def resolve(root: Path, url_path: str) -> Path | None:
    """The file a request path names, or None when it is not one this server shows."""
    relative = unquote(urlsplit(url_path).path).lstrip("/")
    if not allowed(relative):
        return None
    base = root.resolve()
    target = (base / relative).resolve()
    if base not in target.parents or not target.is_file():
        return None
    return target


def link_for(path: str | Path, root: Path, base_url: str | None = None) -> str | None:
    """The URL of a file this server shows (base: `base_url`, else `SYNTH_FILES_URL`); None when no server is
    configured or the file is not one it shows."""
    base_url = base_url if base_url is not None else os.environ.get(FILES_URL_ENV, "")
    if not base_url:
        return None
    try:
        relative = Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    return f"{base_url.rstrip('/')}/{quote(relative)}" if allowed(relative) else None


class _Handler(BaseHTTPRequestHandler):
    root: Path

    def __init__(self, *args, root: Path, **kwargs):
        self.root = root
        super().__init__(*args, **kwargs)

    def _send(self, body: bool) -> None:
        target = resolve(self.root, self.path)
        if target is None:
            self.send_error(404, "Not one of the report pages this server shows")
            return
        data = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        self._send(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(body=False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: paths hold run ids only
        return


def make_server(root: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """The server, bound (not yet serving); refuses a host that is not a loopback address."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"The file server binds to a loopback address only (127.0.0.1 or ::1), not {host!r}: the "
                         "report pages are for the person at this machine.")
    return ThreadingHTTPServer((host, port), partial(_Handler, root=Path(root)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth_platform.file_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, type=Path, help="the platform root ($DAGSTER_HOME/synth_platform)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    server = make_server(args.root, args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
