"""Headless Chromium driven over the Chrome DevTools Protocol (CDP), just enough for a test to open a page, run
JavaScript in it and wait for what it renders. Loopback only: Chromium resolves no host name but 127.0.0.1 and
makes no background connections (updates, sync, metrics).

    with Browser(tmp_path, width=1600, height=1200) as browser:
        browser.open("http://127.0.0.1:3000/assets/...")
        browser.wait_for("document.body.innerText.includes('verdicts')")
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import websocket


# urllib without the environment's proxies: a loopback request goes straight to 127.0.0.1.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Chromium is not installed, and this test drives headless Chromium: install Debian's `chromium` "
                    "package (apt-get install chromium).")
    return path


class Browser:
    """One headless Chromium (in a process group of its own, killed on exit) and a CDP connection to its page."""

    def __init__(self, directory: Path, width: int, height: int, timeout: float = 30):
        self.directory, self.width, self.height, self.timeout = Path(directory), width, height, timeout
        self.process: subprocess.Popen | None = None
        self.socket: websocket.WebSocket | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Browser:
        port = free_port()
        self.log = self.directory / "chromium.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [chromium(), "--headless=new", f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
                 f"--window-size={self.width},{self.height}", f"--user-data-dir={self.directory / 'chromium-profile'}",
                 "--no-first-run", "--no-default-browser-check", "--no-sandbox", "--disable-gpu", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--no-proxy-server",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "about:blank"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            self.socket = websocket.create_connection(self._page_websocket_url(port), timeout=self.timeout,
                                                      suppress_origin=True, http_no_proxy=["127.0.0.1"])
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Emulation.setDeviceMetricsOverride",
                      width=self.width, height=self.height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def _page_websocket_url(self, port: int) -> str:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with LOOPBACK.open(f"http://127.0.0.1:{port}/json", timeout=2) as answer:
                    pages = [t for t in json.load(answer) if t["type"] == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            assert self.process.poll() is None, "Chromium exited:\n" + self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "Chromium's DevTools did not answer:\n" + self.log.read_text()[-3000:]
            time.sleep(0.2)

    def call(self, method: str, **params) -> dict:
        """Send one CDP command and return its result (events that arrive meanwhile are dropped)."""
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-able values; promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:200]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 60, what: str = ""):
        """Poll a JavaScript expression until it is truthy; its value. Fails with the page's text after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''") or ""
                pytest.fail(f"not seen within {timeout:.0f} s: {what or expression}\npage text:\n{text[:3000]}")
            time.sleep(0.5)
