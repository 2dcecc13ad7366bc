"""The artifact layout and hostile folders: DIR's artifacts are regular files that cp, rsync, tar,
zip and JupyterLab copy and serve as they are; a reader racing a publisher reads one whole set;
links under `.cnnlib/` never lead cnnlib outside DIR; a forged set or a zip bomb is caught."""

from __future__ import annotations

import bz2
import hashlib
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time
import urllib.request
import zipfile
import zlib
from pathlib import Path

import pytest

from cnnlib.export import (
    EPOCH_WEIGHTS_DIR,
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    epoch_weights_name,
)
from cnnlib.pipeline import write_artifacts
from cnnlib.store import SETS_DIR
from cnnlib.train import TrainConfig
from cnnlib.verify import verify
from tests.conftest import SHORT
from tests.test_faults import NEW_RUN, cnnlib_regenerate, reader_digests

ONE_EPOCH = TrainConfig(epochs=1, batches_per_epoch=5, device="cpu")


def listed(out: Path) -> dict[str, str]:
    """{name: sha-256} as DIR's manifest lists them, the manifest itself included."""
    manifest = (out / MANIFEST_NAME).read_bytes()
    files = {name: entry["sha256"] for name, entry in json.loads(manifest)["files"].items()}
    return {**files, MANIFEST_NAME: hashlib.sha256(manifest).hexdigest()}


def tool(name: str) -> str:
    """The path of a command-line tool; in CI it must be there (.ci/install-tools)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/install-tools installs it")
        pytest.skip(f"{name} is not installed (sudo .ci/install-tools)")
    return path


# ---------------------------------------------------------------------------------------------
# Regular files, which ordinary tools copy as they are.


def test_the_artifacts_are_regular_files_of_their_real_size(short_run: Path):
    manifest = json.loads((short_run / MANIFEST_NAME).read_text())
    assert stat.S_ISDIR(os.lstat(short_run / EPOCH_WEIGHTS_DIR).st_mode)
    for name, entry in manifest["files"].items():
        status = os.lstat(short_run / name)
        assert stat.S_ISREG(status.st_mode), name
        assert status.st_size == entry["bytes"]
    assert stat.S_ISREG(os.lstat(short_run / MANIFEST_NAME).st_mode)


COPIES = {
    "cp -r data/* site/": 'cp -r "$0"/* "$1"/',
    "cp -a data/pretrained_cnn_data.json site/": 'cp -a "$0/pretrained_cnn_data.json" "$1"/',
    "rsync -a data/*.json site/": 'rsync -a "$0"/*.json "$1"/',
    "tar of single files": (
        'tar -C "$0" -cf "$1/../a.tar" pretrained_cnn_data.json final_model_weights.pth '
        '&& tar -C "$1" -xf "$1/../a.tar"'
    ),
    "zip -r, unzip": 'cd "$0" && zip -qr "$1/../a.zip" . && cd "$1" && unzip -q ../a.zip',
}


@pytest.mark.parametrize("command", sorted(COPIES))
def test_ordinary_tools_copy_the_real_bytes(short_run: Path, tmp_path: Path, command: str):
    tool(command.split()[0])
    if "unzip" in command:
        tool("unzip")
    site = tmp_path / "site"
    site.mkdir()
    done = subprocess.run(
        ["sh", "-c", COPIES[command], str(short_run), str(site)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    copied = [path for path in site.rglob("*") if path.is_symlink() or path.is_file()]
    copied = [path for path in copied if SETS_DIR not in path.relative_to(site).parts]
    assert copied, "nothing was copied"
    expected = listed(short_run)
    for path in copied:
        assert not path.is_symlink(), path
        name = path.relative_to(site).as_posix()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == expected[name], name
    if len(copied) == len(expected):  # a whole copy is a complete set, and can be written into
        assert verify(site, min_accuracy=0.0).passed


def test_an_unzipped_copy_can_be_regenerated_into(
    short_run: Path, tmp_path: Path, mnist, short_results
):
    tool("zip")
    tool("unzip")
    archive, site = tmp_path / "a.zip", tmp_path / "site"
    subprocess.run(["zip", "-qr", str(archive), "."], cwd=short_run, check=True)
    subprocess.run(["unzip", "-q", str(archive), "-d", str(site)], check=True)
    write_artifacts(short_results[:2], mnist, ONE_EPOCH, site)
    assert sorted(path.name for path in (site / EPOCH_WEIGHTS_DIR).iterdir()) == [
        "epoch_0_weights.pth",
        "epoch_1_weights.pth",
    ]
    assert verify(site, min_accuracy=0.0).passed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_jupyterlab_serves_and_downloads_the_real_files(short_run: Path, tmp_path: Path):
    root = tmp_path / "lab"
    shutil.copytree(short_run, root / "data", symlinks=True)
    port, token = free_port(), "cnnlib-test"
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}"]
        + ["--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--notebook-dir={root}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                assert lab.poll() is None and time.monotonic() < deadline, (
                    "JupyterLab did not start"
                )
                time.sleep(0.5)
        expected = listed(short_run)
        for name in (JSON_NAME, FINAL_WEIGHTS_NAME, epoch_weights_name(1)):
            for query in ("", "&download=1"):  # the /files/ URL, and the file browser's download
                with urllib.request.urlopen(
                    f"{base}/files/data/{name}?token={token}{query}", timeout=60
                ) as answer:
                    assert answer.status == 200
                    assert hashlib.sha256(answer.read()).hexdigest() == expected[name]
    finally:
        lab.terminate()
        lab.wait(timeout=60)


# ---------------------------------------------------------------------------------------------
# A reader racing a publisher: cnnlib's readers get one whole set, the old or the new.

PUBLISHER = """
import shutil, sys
from pathlib import Path
from cnnlib.store import SETS_DIR, locked, publish
out, sources, rounds = Path(sys.argv[1]), sys.argv[2:4], int(sys.argv[4])
for number in range(rounds):
    staged = out / SETS_DIR / f"set-{number:x}-race"
    shutil.copytree(sources[number % 2], staged)
    with locked(out):
        publish(out, staged)
"""


def test_a_reader_racing_a_publisher_reads_one_whole_set(
    short_run: Path, tmp_path: Path, mnist, short_results
):
    other = tmp_path / "other"
    write_artifacts(short_results[:2], mnist, ONE_EPOCH, other)
    out = Path(shutil.copytree(short_run, tmp_path / "out", symlinks=True))
    sources = [tmp_path / "a", tmp_path / "b"]
    for source, folder in zip(sources, (short_run, other), strict=True):
        shutil.copytree(folder, source, ignore=shutil.ignore_patterns(SETS_DIR))
    sets = [reader_digests(short_run), reader_digests(other)]
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(out), *map(str, sources), "400"]
    )
    reads = []
    try:
        while publisher.poll() is None:
            reads.append(reader_digests(out))
    finally:
        publisher.wait(timeout=300)
    assert publisher.returncode == 0
    assert len(reads) > 10, "the publisher ended too soon for this test"
    assert [read for read in reads if read not in sets] == []
    assert verify(out, min_accuracy=0.0).passed


# ---------------------------------------------------------------------------------------------
# Links under .cnnlib/: nothing outside DIR is ever written or deleted.


def test_links_under_cnnlib_never_lead_a_run_outside_the_folder(
    fresh_run: Path, short_run: Path, tmp_path: Path
):
    victim = Path(shutil.copytree(short_run, tmp_path / "victim", symlinks=True))
    before = {path: path.read_bytes() for path in victim.rglob("*") if path.is_file()}
    sets = fresh_run / SETS_DIR
    (sets / "set-0").symlink_to(victim)  # looks like a set left by a killed run
    stale = sets / "set-1"  # a real one, whose epoch folder is a link
    stale.mkdir()
    shutil.copy(victim / MANIFEST_NAME, stale / MANIFEST_NAME)
    (stale / EPOCH_WEIGHTS_DIR).symlink_to(victim / EPOCH_WEIGHTS_DIR)
    (sets / "current").symlink_to("set-0")
    done = cnnlib_regenerate(fresh_run, *NEW_RUN)
    assert done.returncode == 0, done.stderr
    assert {path: path.read_bytes() for path in victim.rglob("*") if path.is_file()} == before
    assert (sets / "set-0").is_symlink() and (stale / EPOCH_WEIGHTS_DIR).is_symlink()
    assert verify(fresh_run, min_accuracy=0.0).passed


# ---------------------------------------------------------------------------------------------
# Forged and hostile files.


def test_a_set_whose_last_epoch_is_the_untrained_one_fails_the_measured_metrics(
    fresh_run: Path, short_results
):
    """Epoch 2 and the final weights replaced by epoch 0's (its maps and mistakes too), the
    manifest's sha-256 recomputed: every stored check agrees, the measurement does not."""
    last = epoch_weights_name(SHORT.epochs)
    for name in (last, FINAL_WEIGHTS_NAME):
        shutil.copyfile(fresh_run / epoch_weights_name(0), fresh_run / name)
    payload = json.loads((fresh_run / JSON_NAME).read_text())
    untrained = payload["training_epochs"][0]
    for key in ("weights", "feature_maps", "mistakes"):
        payload["training_epochs"][-1][key] = untrained[key]
    payload["final_weights"] = untrained["weights"]
    named = {m["index"] for entry in payload["training_epochs"] for m in entry["mistakes"]}
    payload["mistake_samples"] = [s for s in payload["mistake_samples"] if s["index"] in named]
    (fresh_run / JSON_NAME).write_text(json.dumps(payload, separators=(",", ":")))
    manifest = json.loads((fresh_run / MANIFEST_NAME).read_text())
    for name, entry in manifest["files"].items():
        content = (fresh_run / name).read_bytes()
        entry.update(bytes=len(content), sha256=hashlib.sha256(content).hexdigest())
    (fresh_run / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    report = verify(fresh_run, min_accuracy=0.0)
    failed = {check.name: check.detail for check in report.checks if not check.passed}
    stated = short_results[-1].test_accuracy
    assert list(failed) == ["test metrics"]
    assert failed["test metrics"].startswith(
        f"{JSON_NAME}: epoch 2 states test accuracy {stated:.2f}%, its weights score "
        f"{short_results[0].test_accuracy:.2f}%"
    )
    accuracy = report.checks[-1].detail
    assert accuracy == f"final test accuracy {short_results[0].test_accuracy:.2f}% (measured) >= 0%"


def zip_bomb(path: Path, members: int, member_bytes: int) -> None:
    """A zip of `members` bzip2 members of `member_bytes` zeros each, written by hand with the
    same small compressed stream for each: well under 1 KB a member."""
    compressor = bz2.BZ2Compressor(9)
    chunk, stream, crc = b"\0" * (1 << 22), [], 0
    for _ in range(member_bytes // len(chunk)):
        stream.append(compressor.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    packed = b"".join([*stream, compressor.flush()])
    local, central = bytearray(), bytearray()
    for number in range(members):
        name = f"archive/data/{number}".encode()
        # version 2.0, no flags, bzip2, a date, the CRC and sizes, the name's length
        common = (0, zipfile.ZIP_BZIP2, 0, 33, crc, len(packed), member_bytes, len(name), 0)
        central += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 46, 3, 46, 0, *common, 0, 0, 0, 0, len(local)
        )
        central += name
        local += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 46, 0, *common) + name + packed
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, members, members, len(central), len(local), 0
    )
    path.write_bytes(bytes(local + central + end))


def test_a_zip_bomb_pth_is_refused_at_once(fresh_run: Path):
    path = fresh_run / epoch_weights_name(1)
    zip_bomb(path, members=1_100, member_bytes=1 << 26)  # 70 GB of zeros in under 1 MB
    assert path.stat().st_size < 1_000_000
    done = subprocess.run(
        [sys.executable, "-m", "cnnlib", "verify", str(fresh_run), "--min-accuracy", "0"],
        capture_output=True,
        text=True,
        timeout=120,  # e44c7ae inflated every member: hours
    )
    assert done.returncode == 1
    assert (
        f"[FAIL] weight files: {epoch_weights_name(1)}: not a snapshot (1100 zip members; "
        "torch.save writes at most 64)"
    ) in done.stdout


def test_a_compressed_pth_is_refused_without_being_inflated(fresh_run: Path):
    path = fresh_run / epoch_weights_name(1)
    zip_bomb(path, members=3, member_bytes=1 << 26)
    failed = {c.name: c.detail for c in verify(fresh_run, min_accuracy=0.0).checks if not c.passed}
    assert failed["weight files"] == (
        f"{epoch_weights_name(1)}: not a snapshot (compressed zip members, which torch.save "
        "never writes)"
    )
