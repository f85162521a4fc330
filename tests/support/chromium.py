"""Headless Chromium over the Chrome DevTools Protocol, for tests of the served pages.

Every browser test drives its pages through this launcher. Outside CI a missing Chromium
skips; with CI=true it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to its profile
    "--window-size=1280,1100",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (scripts/install-test-tools installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class NavigatedAway(AssertionError):
    """A command was cut short because the page navigated (e.g. a clicked link)."""


class DevTools:
    """Just enough CDP: numbered calls on one page target; events are read and ignored."""

    def __init__(self, websocket_url: str) -> None:
        # Chromium refuses websocket clients that send an Origin it does not allow.
        self._ws = websocket.create_connection(websocket_url, timeout=30, suppress_origin=True)
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    if "navigated or closed" in str(message["error"].get("message")):
                        raise NavigatedAway(f"{method}: the page navigated while it ran")
                    raise AssertionError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, element: str) -> None:
        """Click the element a JavaScript expression finds; a link may navigate at once."""
        with suppress(NavigatedAway):
            self.evaluate(f"({element}).click()")

    def wait_for(
        self, expression: str, until: Callable[[Any], bool] = bool, timeout: float = 60.0
    ) -> Any:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except NavigatedAway:  # a click started a navigation: ask the new page
                time.sleep(0.05)
                continue
            if until(value):
                return value
            time.sleep(0.05)
        raise AssertionError(f"{expression!r} never satisfied the condition; last: {value!r}")

    def close(self) -> None:
        self._ws.close()


@contextmanager
def chromium(folder: Path) -> Iterator[DevTools]:
    """A headless Chromium with its profile and log in folder, driven through one page."""
    profile = folder / "chromium-profile"
    process = subprocess.Popen(
        [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "chromium.log").open("wb"),
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert process.poll() is None, (folder / "chromium.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "chromium did not open its debugging port"
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(target for target in targets if target["type"] == "page")
        devtools = DevTools(page["webSocketDebuggerUrl"])
        try:
            yield devtools
        finally:
            devtools.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
