"""demo/serve.py holding a class, and `make site` served by a server that is not ours.

The server's tests use a data folder of their own: a 16 MB pretrained_cnn_data.json of random
hex digits (the server sends bytes; it does not read them), larger than the socket buffers, so
that a reader that stops reading stalls the server's send. `make site` is loaded in Chromium on a
short run's real JSON, served by Python's `http.server` under a sub-path.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cnnlib.data import REPO_DIR
from cnnlib.export import JSON_NAME
from tests.conftest import load_script

serve = load_script(REPO_DIR / "demo" / "serve.py", "demo_serve_class")
BIG = 16_000_000  # bytes of JSON: more than the kernel buffers for a stalled connection
WAIT_S = 30.0  # the longest any step may take on a busy machine before the test fails


@pytest.fixture(scope="module")
def big_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big_data")
    digits = random.Random(0).randbytes(BIG // 2).hex()
    (folder / JSON_NAME).write_text(json.dumps({"digits": digits}))
    return folder


@contextmanager
def in_thread(
    data: Path, repo: Path = REPO_DIR, **options: float
) -> Iterator[tuple[serve.ClassServer, str]]:
    """serve.py's server for `repo`'s page and `data` in a thread of this process."""
    httpd, base = serve.serve_in_thread(serve.Site(repo, {"": data}), **options)
    try:
        yield httpd, base
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def in_process(data: Path, stderr: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """`python demo/serve.py --data DATA` on a free port, its stderr to a file, once listening."""
    port = free_port()
    with stderr.open("w") as errors:
        server = subprocess.Popen(
            [sys.executable, "demo/serve.py", "--port", str(port), "--data", str(data)],
            cwd=REPO_DIR,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        assert server.stdout.readline().startswith("The demo: open"), stderr.read_text()
        yield server, port
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=WAIT_S)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_of(base: str) -> int:
    return urlsplit(base).port


def get(port: int, path: str, **headers: str) -> http.client.HTTPResponse:
    """One GET on a new connection; the response, its body read."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def answer(client: socket.socket) -> tuple[int, bytes]:
    """The status and body of the answer to the request sent on `client`."""
    response = http.client.HTTPResponse(client)
    response.begin()
    return response.status, response.read()


def small_window(port: int) -> socket.socket:
    """A connection that receives little at a time (4 KB buffer), as a phone on a slow link."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(WAIT_S)
    client.connect(("127.0.0.1", port))
    return client


def ask_and_stall(port: int, path: str, gzip_too: bool) -> socket.socket:
    """Ask for `path`, read the answer's header, then stop reading."""
    client = small_window(port)
    accept = "Accept-Encoding: gzip\r\n" if gzip_too else ""
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{accept}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        piece = client.recv(1024)
        assert piece, "the server closed the connection"
        head += piece
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    return client


def leave_abruptly(client: socket.socket) -> None:
    """Close with a reset, as a browser tab closed mid-download."""
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_S:.0f} s: {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# A class at once


def test_200_connections_at_once_wait_in_the_queue_and_are_all_answered(big_data: Path):
    """While the server is not yet accepting, 200 connections complete their handshake in its
    listen queue (Python's default queue holds 5), and each gets its answer."""
    httpd = serve.make_server("127.0.0.1", 0, serve.Site(REPO_DIR, {"": big_data}))
    port = httpd.server_address[1]
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    clients = []
    try:
        for _ in range(200):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            clients.append(client)
        deadline = time.monotonic() + 5
        pending = list(clients)
        while pending and time.monotonic() < deadline:
            _, ready, _ = select.select([], pending, [], 0.5)
            pending = [c for c in pending if c not in ready]
        assert len(pending) == 0, f"{len(pending)} of 200 connections were not queued"
        serving.start()
        for client in clients:
            client.setblocking(True)
            client.settimeout(WAIT_S)
            client.sendall(b"GET /demo/style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        css = (REPO_DIR / "demo" / "style.css").read_bytes()
        for client in clients:
            assert answer(client) == (200, css)
    finally:
        for client in clients:
            client.close()
        if serving.is_alive():
            httpd.shutdown()
        httpd.server_close()


def test_one_connection_carries_a_students_files(big_data: Path):
    with in_thread(big_data) as (_, base):
        connection = http.client.HTTPConnection("127.0.0.1", port_of(base), timeout=WAIT_S)
        first_socket = None
        files = {
            "/demo/": REPO_DIR / "demo" / "index.html",
            "/demo/style.css": REPO_DIR / "demo" / "style.css",
            "/js/cnn.mjs": REPO_DIR / "js" / "cnn.mjs",
            f"/data/{JSON_NAME}": big_data / JSON_NAME,
        }
        for path, file in files.items():
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 200 and response.version == 11
            assert response.read() == file.read_bytes()
            assert not response.will_close
            first_socket = first_socket or connection.sock
            assert connection.sock is first_socket  # the same connection, kept alive
        connection.close()


def test_the_json_is_gzipped_once_and_a_reload_costs_a_304(big_data: Path, monkeypatch):
    compressions = []
    real = serve.gzip_bytes
    monkeypatch.setattr(serve, "gzip_bytes", lambda data: compressions.append(1) or real(data))
    json_bytes = (big_data / JSON_NAME).read_bytes()
    path = f"/data/{JSON_NAME}"
    with in_thread(big_data) as (_, base):
        port = port_of(base)
        answers = [None] * 20

        def student(i: int) -> None:
            answers[i] = get(port, path, **{"Accept-Encoding": "gzip, deflate, br"})

        students = [threading.Thread(target=student, args=(i,)) for i in range(20)]
        for thread in students:
            thread.start()
        for thread in students:
            thread.join()
        assert len(compressions) == 1  # one compression for the 20 at once
        first = answers[0]
        assert first.status == 200 and first.getheader("Content-Encoding") == "gzip"
        assert gzip.decompress(first.body) == json_bytes
        assert len(first.body) < len(json_bytes) * 0.6
        assert {a.body for a in answers} == {first.body}
        assert first.getheader("Content-Length") == str(len(first.body))
        assert first.getheader("Vary") == "Accept-Encoding"
        tag, modified = first.getheader("ETag"), first.getheader("Last-Modified")

        reload = get(port, path, **{"Accept-Encoding": "gzip", "If-None-Match": tag})
        assert (reload.status, reload.body, reload.getheader("ETag")) == (304, b"", tag)
        since = get(port, path, **{"Accept-Encoding": "gzip", "If-Modified-Since": modified})
        assert (since.status, since.body) == (304, b"")

        plain = get(port, path)  # a client that does not accept gzip
        assert plain.getheader("Content-Encoding") is None and plain.body == json_bytes
        assert plain.getheader("ETag") != tag
        assert get(port, path, **{"If-None-Match": tag}).status == 200  # not the gzip copy's

        (big_data / JSON_NAME).write_bytes(json_bytes[:-1] + b" ")  # `make data` ran again
        try:
            changed = get(port, path, **{"Accept-Encoding": "gzip", "If-None-Match": tag})
            assert changed.status == 200 and gzip.decompress(changed.body) == json_bytes[:-1] + b" "
            assert len(compressions) == 2
        finally:
            (big_data / JSON_NAME).write_bytes(json_bytes)


def test_gzip_refused_with_q_0_is_not_sent():
    assert serve.accepts_gzip("gzip, deflate, br")
    assert serve.accepts_gzip("deflate;q=1.0, GZIP;q=0.5")
    assert not serve.accepts_gzip("gzip;q=0, deflate")
    assert not serve.accepts_gzip("gzip; q=0.000")
    assert not serve.accepts_gzip("identity")
    assert not serve.accepts_gzip("")


# ---------------------------------------------------------------------------------------------
# Hostile or broken clients


def test_stalled_readers_hold_no_copy_of_the_json(big_data: Path, tmp_path: Path):
    """40 readers that read the answer's header and nothing more: the server's memory grows by
    far less than one JSON per reader (today's main: a whole copy each)."""
    with in_process(big_data, tmp_path / "stderr") as (server, port):
        get(port, f"/data/{JSON_NAME}", **{"Accept-Encoding": "gzip"})  # the one gzip copy
        before = rss_bytes(server.pid)
        readers = [ask_and_stall(port, f"/data/{JSON_NAME}", i % 2 == 0) for i in range(40)]
        growth = rss_bytes(server.pid) - before
        for reader in readers:
            leave_abruptly(reader)
    assert growth < 40 * BIG / 20, f"{growth / 1e6:.1f} MB for 40 stalled readers"


def test_a_client_that_leaves_costs_one_line_and_no_traceback(big_data: Path, tmp_path: Path):
    stderr = tmp_path / "stderr"
    with in_process(big_data, stderr) as (_, port):
        leave_abruptly(ask_and_stall(port, f"/data/{JSON_NAME}", gzip_too=False))
        leave_abruptly(ask_and_stall(port, f"/data/{JSON_NAME}", gzip_too=True))
        wait_until(lambda: len(stderr.read_text().splitlines()) >= 2, "a line per client")
        assert get(port, "/demo/style.css").status == 200  # still serving
    lines = stderr.read_text().splitlines()
    assert "Traceback" not in stderr.read_text()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("serve.py: 127.0.0.1:")
        assert line.endswith(" left before its answer was sent")


def test_a_nul_byte_or_a_5000_character_name_is_a_clean_404(big_data: Path, tmp_path: Path):
    stderr = tmp_path / "stderr"
    with in_process(big_data, stderr) as (_, port):
        for path in (
            "/demo/index.html%00.js",
            f"/demo/{'a' * 5000}.js",
            f"/data/{'b' * 5000}/{JSON_NAME}",
            f"/data/%00/{JSON_NAME}",
        ):
            assert get(port, path).status == 404, path[:40]
        assert get(port, "/demo/style.css").status == 200
    assert stderr.read_text() == ""


def test_a_silent_or_stalled_client_is_dropped_after_the_timeout(big_data: Path, capsys):
    with in_thread(big_data, timeout=1) as (httpd, base):
        port = port_of(base)
        half = small_window(port)
        half.sendall(b"GET /demo/ HT")  # and nothing more
        assert half.recv(100) == b""  # the server closed it
        half.close()
        stalled = ask_and_stall(port, f"/data/{JSON_NAME}", gzip_too=False)
        wait_until(lambda: httpd.connections == 0, "the stalled reader dropped")
        stalled.close()
    assert capsys.readouterr().err == ""  # quietly


def test_threads_are_bounded_and_every_client_is_answered_in_turn(big_data: Path):
    """At most max_connections threads; the other connections wait in the queue, and a full
    server closes each connection after its answer, so all are served."""
    with in_thread(big_data, timeout=WAIT_S, max_connections=3) as (httpd, base):
        port = port_of(base)
        most = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                most.append(httpd.connections)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        idle = [small_window(port) for _ in range(6)]  # connected, no request yet
        wait_until(lambda: httpd.connections == 3, "three connections served")
        time.sleep(0.2)
        assert httpd.connections == 3  # the other three wait in the queue
        for client in idle:
            client.sendall(b"GET /demo/boot.js HTTP/1.1\r\nHost: x\r\n\r\n")
        boot = (REPO_DIR / "demo" / "boot.js").read_bytes()
        for client in idle:
            assert answer(client) == (200, boot)
            client.close()
        sampling.set()
        sampler.join()
    assert max(most) <= 3


# ---------------------------------------------------------------------------------------------
# make demo DATA=...: the page finds the folder the lecturer names


def make(*arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["make", "--no-print-directory", *arguments],
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, ended with the server in it
    )


def test_make_demo_serves_the_data_folder_it_is_given_and_its_subfolders(tmp_path: Path):
    """`make data OUTPUT_DIR=runs/x` then `make demo DATA=runs/x`: the page's default URL gets
    that folder's JSON; `?data=../data/SUB/pretrained_cnn_data.json` gets SUB's."""
    (tmp_path / "seed1").mkdir()
    (tmp_path / JSON_NAME).write_text('{"run": "named"}')
    (tmp_path / "seed1" / JSON_NAME).write_text('{"run": "seed1"}')
    (tmp_path / "secret.txt").write_text("not for the class")
    (tmp_path / ".cnnlib").mkdir()
    (tmp_path / ".cnnlib" / JSON_NAME).write_text('{"run": "staged"}')
    port = free_port()
    server = make("demo", f"PORT={port}", f"DATA={tmp_path}")
    try:
        assert server.stdout.readline().startswith("The demo: open")
        assert get(port, f"/data/{JSON_NAME}").body == b'{"run": "named"}'
        assert get(port, f"/data/seed1/{JSON_NAME}").body == b'{"run": "seed1"}'
        for path in (
            "/data/secret.txt",
            f"/data/seed2/{JSON_NAME}",
            f"/data/../{JSON_NAME}",
            f"/data/.cnnlib/{JSON_NAME}",
        ):
            assert get(port, path).status == 404, path
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=WAIT_S)


def test_a_run_anywhere_in_the_repository_is_served_at_its_own_path(tmp_path: Path):
    """`?data=../runs/ex1/pretrained_cnn_data.json` (an exercise's retrained run) finds it."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    for folder in (repo / "demo", repo / "js", repo / "runs" / "ex1", outside):
        folder.mkdir(parents=True)
    (repo / "runs" / "ex1" / JSON_NAME).write_text('{"run": "ex1"}')
    (outside / JSON_NAME).write_text("not for the class")
    (repo / "runs" / "away").symlink_to(outside)
    with in_thread(repo / "data", repo) as (_, base):
        port = port_of(base)
        assert get(port, f"/runs/ex1/{JSON_NAME}").body == b'{"run": "ex1"}'
        for path in (f"/runs/away/{JSON_NAME}", f"/runs/ex2/{JSON_NAME}", "/runs/ex1/x.json"):
            assert get(port, path).status == 404, path


def test_make_demo_without_data_says_so_after_its_url(tmp_path: Path):
    port = free_port()
    server = make("demo", f"PORT={port}", f"DATA={tmp_path}")
    try:
        assert server.stdout.readline().startswith("The demo: open")
        assert server.stdout.readline() == (
            f"serve.py: no {JSON_NAME} in {tmp_path} yet: the page says so until `make data` "
            "writes it (or name its folder: make demo DATA=FOLDER)\n"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=WAIT_S)


# ---------------------------------------------------------------------------------------------
# make site: one static folder, served by a server that is not ours, from a sub-path


def make_site(data: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "site", f"DATA={data}", f"SITE={site}"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
    )


def site_files(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def test_make_site_writes_the_page_the_json_and_its_gzip_copy(short_run: Path, tmp_path: Path):
    site = tmp_path / "www" / "course" / "cnn"
    made = make_site(short_run, site)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"The demo as a static site: {site}/ (")
    files = site_files(site)
    json_bytes = (short_run / JSON_NAME).read_bytes()
    assert files[f"data/{JSON_NAME}"] == json_bytes
    assert gzip.decompress(files[f"data/{JSON_NAME}.gz"]) == json_bytes
    for name in ("demo/index.html", "demo/main.mjs", "demo/style.css", "js/cnn.mjs"):
        assert files[name] == (REPO_DIR / name).read_bytes()
    assert not any(name.endswith((".py", ".png")) for name in files)
    assert b'url=demo/"' in files["index.html"]
    assert sorted(p.name for p in site.parent.iterdir()) == ["cnn"]  # nothing hidden left

    again = make_site(short_run, site)  # the same bytes again, replacing the old folder
    assert again.returncode == 0 and site_files(site) == files
    assert sorted(p.name for p in site.parent.iterdir()) == ["cnn"]


def test_make_site_leaves_a_folder_it_did_not_write_untouched(short_run: Path, tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.txt").write_text("the lecturer's")
    made = make_site(short_run, site)
    assert made.returncode != 0
    assert made.stderr.splitlines()[0] == (
        f"site.py: {site} holds files `make site` did not write; it is left as it is: "
        "name another folder, e.g. make site SITE=site"
    )
    assert site_files(site) == {"notes.txt": b"the lecturer's"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]
    missing = make_site(tmp_path / "nowhere", tmp_path / "other")
    assert missing.returncode != 0 and "run `make data` first" in missing.stderr
    assert not (tmp_path / "other").exists()


def test_the_site_served_by_pythons_http_server_under_a_sub_path_predicts(
    short_run: Path, tmp_path: Path, browser
):
    """`python -m http.server` (not ours) serves the folder at /course/cnn/; Chromium opens
    that address and the page loads the JSON and draws its first prediction."""
    site = tmp_path / "www" / "course" / "cnn"
    assert make_site(short_run, site).returncode == 0
    port = free_port()
    static = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path / "www",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: can_connect(port), "http.server listening")
        tab = browser.new_page()
        requested, failed = [], []
        tab.on("request", lambda request: requested.append(urlsplit(request.url).path))
        tab.on("requestfailed", lambda request: failed.append(request.url))
        tab.goto(f"http://127.0.0.1:{port}/course/cnn/")
        tab.wait_for_function("window.demoState !== undefined", timeout=WAIT_S * 1000)
        state = tab.evaluate("window.demoState")
        tab.close()
    finally:
        static.terminate()
        static.wait(timeout=WAIT_S)
    assert state["status"] == "ready", state.get("error")
    assert state["prediction"] in range(10)
    assert f"/course/cnn/data/{JSON_NAME}" in requested
    assert all(path.startswith("/course/cnn/") for path in requested if path), requested
    assert failed == []


def can_connect(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
