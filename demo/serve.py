"""serve.py: the demo page's web server (`make demo`), standard library only.

    python3 demo/serve.py [--host 127.0.0.1] [--port 8000] [--data data]

It serves what the page needs and nothing else: the files of demo/ and js/ that a browser loads
(.html, .mjs, .js, .css) and the data folder's pretrained_cnn_data.json as
/data/pretrained_cnn_data.json (the same name in its subfolders as /data/SUB/..., and in the
repository's folders, such as runs/NAME/, at their own path: the page's `?data=`). A path that
leads anywhere else, a hidden name, or a symbolic link whose target lies outside demo/, js/, the
data folder or the repository, is answered 404. The tests and bench/page.py use the same server,
with other data folders under /data/NAME/.

Made for a class of 200: a listen queue of 1024 and HTTP/1.1 keep-alive (one connection carries
a student's files); at most MAX_CONNECTIONS threads, one per connection; each file gzipped once
per version and kept in memory, sent to browsers that accept gzip; an ETag and Last-Modified, so
a reload is a 304 with no body; bodies streamed, never copied (a file by sendfile, a gzip copy in
64 KB pieces); a client silent for TIMEOUT seconds is dropped; one quiet line for a client that
left.
"""

from __future__ import annotations

import argparse
import errno
import gzip
import os
import re
import socket
import sys
import threading
from contextlib import suppress
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

REPO_DIR = Path(__file__).resolve().parent.parent
JSON_NAME = "pretrained_cnn_data.json"
PAGE_PATH = "/demo/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
MAX_CONNECTIONS = 1024  # threads; further connections wait in the listen queue
TIMEOUT = 20.0  # seconds a client may stay silent (a request, a read of the body)
KEEP_ALIVE = 5.0  # seconds an idle kept-alive connection waits for its next request
PIECE = 64 * 1024  # bytes sent at a time
NO_GZIP = re.compile(r"\s*q\s*=\s*0(\.0*)?\s*")


def gzip_bytes(data: bytes) -> bytes:
    """`data` gzipped, the same bytes each time (no time stamp): what serve.py sends and what
    `make site` stores beside the JSON."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def accepts_gzip(accept_encoding: str) -> bool:
    """Does an Accept-Encoding header accept gzip (named, with no q=0)?"""
    for coding in accept_encoding.split(","):
        name, _, quality = coding.partition(";")
        if name.strip().lower() == "gzip":
            return NO_GZIP.fullmatch(quality) is None
    return False


def inside(path: Path, folder: Path) -> Path | None:
    """`path` with every link resolved, when it is a regular file inside `folder`; else None
    (also for a name the system refuses: a NUL byte, too long)."""
    try:
        real = path.resolve()
        return real if real.is_relative_to(folder.resolve()) and real.is_file() else None
    except (OSError, ValueError):
        return None


class Site:
    """What is served: demo/ and js/ of `repo`, and each data folder's JSON, data/JSON_NAME for
    the folder named "" and data/NAME/JSON_NAME for the others; data/SUB/JSON_NAME, for a SUB
    that names no folder, is SUB/JSON_NAME inside the folder named ""; any other PATH/JSON_NAME
    is that file of `repo` (a run in runs/, for `?data=../runs/NAME/JSON_NAME`). No hidden name
    (.git, .cnnlib, ..) is served."""

    def __init__(self, repo: Path, data: dict[str, Path]):
        self.repo = repo
        self.code = {"demo": repo / "demo", "js": repo / "js"}
        self.data = data

    def file(self, url_path: str) -> Path | None:
        """The file to send for a URL path, or None (not served)."""
        parts = unquote(url_path).split("/")[1:]
        if any(part.startswith(".") for part in parts):  # also "..": no way up
            return None
        if parts[-1:] == [JSON_NAME]:
            return self.data_file(parts[:-1])
        if len(parts) == 2 and parts[0] in self.code:
            name = parts[1] or "index.html"
            if Path(name).suffix in CONTENT_TYPES:
                return inside(self.code[parts[0]] / name, self.code[parts[0]])
        return None

    def data_file(self, folders: list[str]) -> Path | None:
        """The JSON in the folder that the URL's `folders` name, or None."""
        if folders[:1] != ["data"]:
            return inside(self.repo.joinpath(*folders, JSON_NAME), self.repo)
        name = "/".join(folders[1:])
        if name in self.data:
            return inside(self.data[name] / JSON_NAME, self.data[name])
        if "" in self.data:
            return inside(self.data[""] / name / JSON_NAME, self.data[""])
        return None


class GzipCopies:
    """Each served file's gzip copy, made once per version of the file (its inode, size and
    modification time) and kept in memory until the file changes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.copies: dict[Path, tuple[tuple[int, ...], bytes]] = {}

    def of(self, path: Path, file: BinaryIO, stat: os.stat_result) -> bytes:
        version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self.lock:  # 200 first requests at once: one compression, the others wait for it
            kept = self.copies.get(path)
            if kept is None or kept[0] != version:
                kept = self.copies[path] = (version, gzip_bytes(file.read()))
            return kept[1]


def entity_tag(stat: os.stat_result, gzipped: bool) -> str:
    """A strong ETag for one version of a file, in one encoding."""
    tag = f"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}"
    return f'"{tag}-gzip"' if gzipped else f'"{tag}"'


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the site's files over HTTP/1.1; / and /demo lead to the page; no log line
    per request."""

    protocol_version = "HTTP/1.1"
    timeout = TIMEOUT
    keep_alive = KEEP_ALIVE
    site: Site
    gzip_copies: GzipCopies

    def handle(self) -> None:
        """Requests on this connection until the client closes it, asks to, or stays idle for
        `keep_alive` seconds."""
        self.close_connection = False
        while not self.close_connection and self.next_request_arrives():
            self.handle_one_request()

    def end_headers(self) -> None:
        if self.server.full() and not self.close_connection:  # others wait for a thread
            self.send_header("Connection", "close")
        super().end_headers()

    def next_request_arrives(self) -> bool:
        """Wait up to `keep_alive` seconds for the first byte of a request."""
        self.connection.settimeout(self.keep_alive)
        try:
            return self.rfile.peek(1) != b""
        except OSError:  # the wait timed out, or the client reset the connection
            return False
        finally:
            self.connection.settimeout(self.timeout)

    def do_GET(self) -> None:
        self.answer(send_body=True)

    def do_HEAD(self) -> None:
        self.answer(send_body=False)

    def answer(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path in ("/", "/demo"):
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", PAGE_PATH)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        file = self.site.file(path)
        if file is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        with file.open("rb") as opened:
            stat = os.fstat(opened.fileno())  # the version sent is the one opened
            gzipped = accepts_gzip(self.headers.get("Accept-Encoding", ""))
            tag = entity_tag(stat, gzipped)
            unchanged = self.unchanged(tag, stat)
            self.send_response(HTTPStatus.NOT_MODIFIED if unchanged else HTTPStatus.OK)
            self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "application/json"))
            self.send_header("Cache-Control", "no-cache")  # ask each time: a reload is a 304
            self.send_header("ETag", tag)
            self.send_header("Last-Modified", self.date_time_string(int(stat.st_mtime)))
            self.send_header("Vary", "Accept-Encoding")
            if unchanged:
                self.end_headers()
                return
            gzipped_body = self.gzip_copies.of(file, opened, stat) if gzipped else b""
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            length = len(gzipped_body) if gzipped else stat.st_size
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if send_body and gzipped:
                self.send_pieces(memoryview(gzipped_body))
            elif send_body:
                self.connection.sendfile(opened)  # by the kernel, straight from the file

    def send_pieces(self, body: memoryview) -> None:
        """Send `body` PIECE bytes at a time: the timeout applies to each piece, none copied."""
        for start in range(0, len(body), PIECE):
            self.wfile.write(body[start : start + PIECE])

    def unchanged(self, tag: str, stat: os.stat_result) -> bool:
        """Does the browser's copy (If-None-Match, else If-Modified-Since) match this version?"""
        tags = self.headers.get("If-None-Match")
        if tags is not None:
            return tag in [t.strip() for t in tags.split(",")] or tags.strip() == "*"
        since = self.headers.get("If-Modified-Since")
        try:
            return int(stat.st_mtime) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):  # no header, or not a date
            return False

    def log_message(self, format: str, *args: object) -> None:
        pass


class ClassServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections`: the others wait in the listen queue.
    A client that leaves mid-answer costs one line on stderr, not a traceback; one that stalls
    is dropped without a word (http.server catches the timeout)."""

    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int):
        super().__init__(address, handler)
        self.max_connections = max_connections
        self.connections = 0
        self.room = threading.Condition()

    def full(self) -> bool:
        return self.connections >= self.max_connections

    def process_request(self, request, client_address) -> None:
        with self.room:
            self.room.wait_for(lambda: not self.full())
            self.connections += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.room:
                self.connections -= 1
                self.room.notify()

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # a bug: its traceback
            return
        host, port = client_address[:2]
        print(f"serve.py: {host}:{port} left before its answer was sent", file=sys.stderr)


def make_server(
    host: str,
    port: int,
    site: Site,
    timeout: float = TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> ClassServer:
    """A server for `site` bound to host:port (port 0: a free one); OSError when it cannot bind.
    A client silent for `timeout` seconds is dropped (an idle connection after less, KEEP_ALIVE
    at most)."""
    handler = type(
        "SiteHandler",
        (Handler,),
        {
            "site": site,
            "gzip_copies": GzipCopies(),
            "timeout": timeout,
            "keep_alive": min(KEEP_ALIVE, timeout),
        },
    )
    return ClassServer((host, port), handler, max_connections)


def serve_in_thread(site: Site, **options: float) -> tuple[ClassServer, str]:
    """A server for `site` (make_server's `options`) on a free port of 127.0.0.1, running in a
    thread, and its base URL."""
    httpd = make_server("127.0.0.1", 0, site, **options)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def connections_allowed(wanted: int) -> int:
    """Raise this process's limit of open files (256 by default on macOS) to let `wanted`
    connections in, as far as the system allows; how many it lets in."""
    try:
        import resource  # not on Windows, which has no such limit
    except ImportError:
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + 64  # the server's own files and sockets
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return wanted if soft == resource.RLIM_INFINITY else max(1, min(wanted, soft - 64))


def network_address() -> str:
    """This machine's address on its local network (the interface of its default route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a documentation address: no packet is sent
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()


def announce(host: str, port: int) -> str:
    """What `make demo` prints once the server listens: the URL to open, and for a class on the
    network, the URL to give the students and what it shares."""
    if host in ("0.0.0.0", "::", ""):
        url = f"http://{network_address()}:{port}{PAGE_PATH}"
        return (
            f"The demo: give the students {url} (here: http://127.0.0.1:{port}{PAGE_PATH}); "
            "Ctrl-C stops the server.\n"
            "Shared with everyone on this network: the page, js/ and "
            f"data/{JSON_NAME} (the network's weights and 100 MNIST test images), nothing else."
        )
    return f"The demo: open http://{host}:{port}{PAGE_PATH} (Ctrl-C stops the server)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 serves the local network")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO_DIR / "data",
        help=f"the folder whose {JSON_NAME} the page loads (make data's OUTPUT_DIR)",
    )
    args = parser.parse_args(argv)
    site = Site(REPO_DIR, {"": args.data})
    try:
        httpd = make_server(
            args.host, args.port, site, max_connections=connections_allowed(MAX_CONNECTIONS)
        )
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            print(
                f"serve.py: port {args.port} is already in use (another `make demo`?); "
                f"choose another, e.g. make demo PORT={args.port + 1}",
                file=sys.stderr,
            )
        else:
            print(f"serve.py: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    data = site.file(f"/data/{JSON_NAME}")
    if data is not None:
        with data.open("rb") as opened:  # gzipped now: the first students need not wait for it
            httpd.RequestHandlerClass.gzip_copies.of(data, opened, os.fstat(opened.fileno()))
    print(announce(args.host, args.port), flush=True)
    if data is None:
        print(
            f"serve.py: no {JSON_NAME} in {args.data} yet: the page says so until `make data` "
            "writes it (or name its folder: make demo DATA=FOLDER)",
            file=sys.stderr,
        )
    with httpd:
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            print("\nThe demo server stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
