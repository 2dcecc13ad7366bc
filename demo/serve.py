"""serve.py: the demo page's web server (`make demo`), standard library only.

    python3 demo/serve.py [--host 127.0.0.1] [--port 8000]

It serves what the page needs and nothing else: the files of demo/ and js/ that a browser loads
(.html, .mjs, .js, .css) and data/pretrained_cnn_data.json. A path that leads anywhere else, or a
symbolic link whose target lies outside demo/, js/ or data/, is answered 404. The tests and
bench/page.py use the same server, with other data folders under /data/NAME/.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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


def inside(path: Path, folder: Path) -> Path | None:
    """`path` with every link resolved, when it is a regular file inside `folder`; else None."""
    real = path.resolve()
    return real if real.is_relative_to(folder.resolve()) and real.is_file() else None


class Site:
    """What is served: demo/ and js/ of `repo`, and each data folder's JSON, data/JSON_NAME for
    the folder named "" and data/NAME/JSON_NAME for the others."""

    def __init__(self, repo: Path, data: dict[str, Path]):
        self.code = {"demo": repo / "demo", "js": repo / "js"}
        self.data = data

    def file(self, url_path: str) -> Path | None:
        """The file to send for a URL path, or None (not served)."""
        parts = unquote(url_path).split("/")[1:]
        if parts[:1] == ["data"] and parts[-1:] == [JSON_NAME] and len(parts) in (2, 3):
            folder = self.data.get("/".join(parts[1:-1]))
            return None if folder is None else inside(folder / JSON_NAME, folder)
        if len(parts) == 2 and parts[0] in self.code and ".." not in parts:
            name = parts[1] or "index.html"
            if Path(name).suffix in CONTENT_TYPES:
                return inside(self.code[parts[0]] / name, self.code[parts[0]])
        return None


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the site's files; / and /demo lead to the page; no log line per request."""

    site: Site

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
        body = file.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def make_server(host: str, port: int, site: Site) -> ThreadingHTTPServer:
    """A server for `site` bound to host:port (port 0: a free one); OSError when it cannot bind."""
    handler = type("SiteHandler", (Handler,), {"site": site})
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(site: Site) -> tuple[ThreadingHTTPServer, str]:
    """A server for `site` on a free port of 127.0.0.1, running in a thread, and its base URL."""
    httpd = make_server("127.0.0.1", 0, site)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


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
    args = parser.parse_args(argv)
    site = Site(REPO_DIR, {"": REPO_DIR / "data"})
    try:
        httpd = make_server(args.host, args.port, site)
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
    print(announce(args.host, args.port), flush=True)
    with httpd:
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            print("\nThe demo server stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
