"""site.py: the demo as one static folder (`make site`) that any web server serves as it is.

    python3 demo/site.py [--data data] [--out site]

OUT gets what `make demo` serves: the page's files (demo/ and js/), data/pretrained_cnn_data.json
with its gzip copy beside it (.gz, for servers that send precompressed files, such as nginx with
`gzip_static on`), and an index.html that leads to demo/. Every URL in the page is relative, so
OUT works copied anywhere, under any path (https://example.org/~lecturer/cnn/). OUT is built in a
hidden folder beside it and renamed into place; an OUT holding a file this script does not write
is left as it is, and one line says so.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from serve import CONTENT_TYPES, JSON_NAME, REPO_DIR, gzip_bytes, inside

INDEX = (
    '<!doctype html>\n<meta charset="utf-8" />\n<title>CNN Architecture demo</title>\n'
    '<meta http-equiv="refresh" content="0; url=demo/" />\n<a href="demo/">The demo</a>\n'
)
SUFFIXES = "|".join(re.escape(suffix[1:]) for suffix in CONTENT_TYPES)
OUR_PATH = re.compile(
    rf"index\.html|(demo|js)/[^/]+\.({SUFFIXES})|data/{re.escape(JSON_NAME)}(\.gz)?"
)


class SiteError(Exception):
    """Why the site cannot be built, in one line."""


def page_files(repo: Path) -> dict[str, Path]:
    """The page's files as serve.py serves them: relative path in the site -> source file."""
    files = {}
    for folder in ("demo", "js"):
        for path in sorted((repo / folder).iterdir()):
            source = inside(path, repo / folder)
            if path.suffix in CONTENT_TYPES and not path.name.startswith(".") and source:
                files[f"{folder}/{path.name}"] = source
    return files


def is_our_site(out: Path) -> bool:
    """Does `out` hold only files of the kinds this script writes (no link, nothing else)?"""
    for path in out.rglob("*"):
        if path.is_symlink() or (
            path.is_file() and OUR_PATH.fullmatch(path.relative_to(out).as_posix()) is None
        ):
            return False
    return True


def write_site(folder: Path, data_json: Path, repo: Path) -> None:
    """The site's files, written into the empty `folder`."""
    for name, source in page_files(repo).items():
        (folder / name).parent.mkdir(exist_ok=True)
        shutil.copyfile(source, folder / name)
    (folder / "index.html").write_text(INDEX)
    (folder / "data").mkdir()
    data = data_json.read_bytes()
    (folder / "data" / JSON_NAME).write_bytes(data)
    (folder / "data" / f"{JSON_NAME}.gz").write_bytes(gzip_bytes(data))


def build_site(data: Path, out: Path, repo: Path = REPO_DIR) -> None:
    """Build the site of `data`'s JSON in `out` (replacing a site built before); SiteError."""
    data_json = inside(data / JSON_NAME, data)
    if data_json is None:
        raise SiteError(
            f"no {JSON_NAME} in {data}: run `make data` first, or name the folder "
            "that holds it: make site DATA=FOLDER"
        )
    if out.is_symlink() or (out.exists() and not (out.is_dir() and is_our_site(out))):
        raise SiteError(
            f"{out} holds files `make site` did not write; it is left as it is: "
            "name another folder, e.g. make site SITE=site"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    hidden = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write_site(hidden, data_json, repo)
        hidden.chmod(0o755)  # mkdtemp's folder is private; a web server must read it
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / out.name)
            hidden.rename(out)
            shutil.rmtree(old)
        else:
            hidden.rename(out)
    finally:
        if hidden.exists():
            shutil.rmtree(hidden)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO_DIR / "data",
        help=f"the folder whose {JSON_NAME} the site shows",
    )
    parser.add_argument("--out", type=Path, default=REPO_DIR / "site", help="the site's folder")
    args = parser.parse_args(argv)
    try:
        build_site(args.data, args.out)
    except (SiteError, OSError) as error:
        print(f"site.py: {error}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file()) / 1e6
    print(
        f"The demo as a static site: {args.out}{os.sep} ({size:.1f} MB); copy it to any web "
        "server, under any path, and open its demo/ folder."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
