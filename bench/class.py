"""A class of 200 students opening the demo page at once, from `make demo`'s server.

    .venv/bin/python bench/class.py [--data DIR] [--students 200] [--server FILE] [--timeout 60]

Starts FILE (a serve.py, default this checkout's demo/serve.py) in its own process on a free port
of 127.0.0.1, serving this checkout's page and DIR's JSON (default data/), and waits for its first
line. Then all students start at once. Each fetches what Chromium fetches, in its order, over at
most 6 connections (Chromium's limit per server, kept alive when the server allows it): the page,
the style and scripts it names, the modules they import, then the JSON, accepting gzip. Prints
when the last student had every file (the data for its first prediction), the median, the bytes
sent, every error, and the load average (`uptime`) before and after. Target: all of them, no
error, within 10 s. Every body is checked: the same bytes for every student, and the files' bytes
once un-gzipped. Exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
JSON_NAME = "pretrained_cnn_data.json"
CONNECTIONS = 6  # Chromium's connections per server over HTTP/1.1
TARGET_S = 10.0
ACCEPT = "Accept-Encoding: gzip, deflate, br\r\n"
REFERENCES = re.compile(
    r'(?:href|src)="([\w./-]+\.(?:css|m?js))"|(?:import|from)\s*"([\w./-]+\.m?js)"'
)


def page_waves() -> list[list[str]]:
    """The URL paths the page loads, in waves as a browser finds them: demo/index.html, what it
    names, the modules those import (each once), ..., and the JSON last."""
    waves, seen, wave = [], set(), ["/demo/index.html"]
    while wave:
        waves.append(wave)
        seen.update(wave)
        found = []
        for path in wave:
            text = (REPO_DIR / path.lstrip("/")).read_text()
            for match in REFERENCES.finditer(text):
                url = os.path.normpath(os.path.join(os.path.dirname(path), match[1] or match[2]))
                if url not in seen and url not in found:
                    found.append(url)
        wave = found
    return [*waves, [f"/data/{JSON_NAME}"]]


class Connection:
    """One HTTP/1.1 connection of a student, opened when needed, reopened after the server
    closes it (HTTP/1.0, `Connection: close`)."""

    def __init__(self, port: int):
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> tuple[int, bool, bytes]:
        """Status, whether gzipped, body; a reused connection the server had closed is reopened
        once, as browsers do."""
        reused = self.streams is not None
        try:
            return await self.request(path)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            if not reused:
                raise
            return await self.request(path)

    async def request(self, path: str) -> tuple[int, bool, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{ACCEPT}\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower().split("\r\n")
        version, status = head[0].split()[:2]
        fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        body = await reader.readexactly(int(fields["content-length"]))
        if version == "http/1.0" or fields.get("connection") == "close":
            self.close()
        return int(status), fields.get("content-encoding") == "gzip", body

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def student(port: int, waves: list[list[str]], bodies: dict, start: float) -> float:
    """One student's page load; the seconds from `start` until the JSON's last byte."""
    connections = [Connection(port) for _ in range(CONNECTIONS)]

    async def fetch_all(connection: Connection, queue: list[str]) -> None:
        while queue:
            path = queue.pop(0)
            status, gzipped, body = await connection.get(path)
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}")
            if bodies.setdefault((path, gzipped), body) != body:
                raise RuntimeError(f"{path}: other bytes than another student's")

    try:
        for wave in waves:
            queue = list(wave)
            await asyncio.gather(*(fetch_all(c, queue) for c in connections[: len(wave)]))
        return time.perf_counter() - start
    finally:
        for connection in connections:
            connection.close()


async def run_class(
    port: int, students: int, timeout: float, root: Path
) -> tuple[list[float], Counter]:
    """Every student at once, from a server of the files in `root`; their times, and the errors
    counted by kind."""
    waves, bodies = page_waves(), {}
    start = time.perf_counter()
    results = await asyncio.gather(
        *(asyncio.wait_for(student(port, waves, bodies, start), timeout) for _ in range(students)),
        return_exceptions=True,
    )
    times = [r for r in results if isinstance(r, float)]
    errors = Counter(
        f"no data after {timeout:.0f} s"
        if isinstance(r, TimeoutError)
        else f"{type(r).__name__}: {r}"
        for r in results
        if not isinstance(r, float)
    )
    errors.update(check_bodies(bodies, root))
    return times, errors


def check_bodies(bodies: dict, root: Path) -> list[str]:
    """What differs between the bodies the students got and the files in `root` (un-gzipped)."""
    wrong = []
    for (path, gzipped), body in bodies.items():
        if (gzip.decompress(body) if gzipped else body) != (root / path.lstrip("/")).read_bytes():
            wrong.append(f"{path}: the bytes sent are not the file's")
    return wrong


def served_copy(server: Path, data: Path, folder: Path) -> Path:
    """A copy of this checkout's page in `folder` (demo/, js/, data/JSON), with `server` as its
    demo/serve.py: any version of serve.py serves it as it serves its own checkout."""
    shutil.copytree(REPO_DIR / "demo", folder / "demo", ignore=shutil.ignore_patterns("*.png"))
    shutil.copytree(REPO_DIR / "js", folder / "js")
    shutil.copyfile(server, folder / "demo" / "serve.py")
    (folder / "data").mkdir()
    shutil.copyfile(data / JSON_NAME, folder / "data" / JSON_NAME)
    return folder / "demo" / "serve.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load() -> str:
    return "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_DIR / "data")
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--server", type=Path, default=REPO_DIR / "demo" / "serve.py")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per student")
    args = parser.parse_args(argv)
    if not (args.data / JSON_NAME).is_file():
        print(f"class.py: no {JSON_NAME} in {args.data}: run `make data` or name --data DIR")
        return 1
    with tempfile.TemporaryDirectory() as folder:
        script = served_copy(args.server, args.data, Path(folder))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, script, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            server.stdout.readline()  # "The demo: open ...": it listens, its JSON gzipped
            before = load()
            times, errors = asyncio.run(run_class(port, args.students, args.timeout, Path(folder)))
            after = load()
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=30)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"server: {args.server}; data: {args.data / JSON_NAME}")
    print(f"{len(times)} of {args.students} students had the page and the data", end="")
    if times:
        print(f"; the last after {max(times):.2f} s (median {statistics.median(times):.2f} s)")
    else:
        print()
    for error, count in errors.most_common():
        print(f"  {count} x {error}")
    lines = [line for line in stderr.splitlines() if line]
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"CPU time: the server {used.ru_utime + used.ru_stime:.2f} s (its start and gzip "
        f"included), the students {own.ru_utime + own.ru_stime:.2f} s"
    )
    print(f"server's stderr: {len(lines)} lines, {sum('Traceback' in x for x in lines)} tracebacks")
    print(f"{os.cpu_count()} cores; before the class: {before}; after: {after}")
    missed = errors or len(times) < args.students or max(times) > TARGET_S
    print(
        f"target: all {args.students}, no error, within {TARGET_S:.0f} s:",
        "MISSED" if missed else "ok",
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
