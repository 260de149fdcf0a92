"""The latent explorer inline in a notebook: a notebook cell calls `explore()`, its output is
an iframe, and headless Chromium loads the iframe's address while the kernel lives — the map
and a decoded image appear; when the kernel stops, so does the server. Needs nbclient,
ipykernel, and Debian's chromium + chromium-driver (skips, saying so, without them)."""

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _webdriver(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["value"]


def test_explore_in_a_notebook_shows_the_map_and_a_decode(tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(f"{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import aekit\n"
        "X, y = aekit.datasets.shapes(400, seed=0)\n"
        "ae = aekit.AutoEncoder(hidden=(32,), latent=2, epochs=2, seed=0).fit(X.reshape(-1, 1, 28, 28))\n"
        "ae.explore(X[:300], y[:300])"
    )])
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3")
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        html = nb.cells[0].outputs[-1]["data"]["text/html"]
        url = re.search(r'<iframe src="([^"]+)"', html).group(1)
        port = _free_port()
        driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.time() < deadline, "chromedriver did not listen"
                    time.sleep(0.1)
            session = _webdriver("POST", f"{base}/session", {"capabilities": {"alwaysMatch": {
                "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}}}})
            sid = session["sessionId"]
            try:
                # The notebook shows the explorer in an iframe: the browser loads that address.
                _webdriver("POST", f"{base}/session/{sid}/url", {"url": url})
                script = ("const a = window.aekit; if (!a || !a.ready || !a.shown.x) return null;"
                          "return {points: a.state.map.points.length, decoded: a.shown.decoded,"
                          " pixels: a.shown.x.length};")
                seen, deadline = None, time.time() + 60
                while seen is None:
                    seen = _webdriver("POST", f"{base}/session/{sid}/execute/sync",
                                      {"script": script, "args": []})
                    assert seen is not None or time.time() < deadline, "the explorer did not load"
                    time.sleep(0.2)
            finally:
                _webdriver("DELETE", f"{base}/session/{sid}")
        finally:
            driver.kill()
        assert seen["points"] == 300, seen       # the map: every row given
        assert seen["decoded"] >= 1 and seen["pixels"] == 784, seen   # a decoded image
    # The kernel has stopped, and the server with it.
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)
