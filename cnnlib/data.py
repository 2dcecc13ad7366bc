"""The factory, stage 1, data: the vendored MNIST files, checked and loaded once into in-memory
tensors.

Every later stage works on these tensors: no per-sample PIL or transform work. The pixels come
from the very bytes whose MD5 was checked, never from a cache beside them; they stay bytes and are
normalized a batch at a time, as training and evaluation draw them.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlib.files import atomic_write_bytes, remove_stale_temporaries

REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_DIR / "data"
# cnnlib works from its repository (`pip install -e .`), where data/ holds the vendored MNIST
# and the artifacts; `pip install .` copies the package alone into site-packages.
IN_REPOSITORY = (REPO_DIR / "pyproject.toml").is_file()

# The mean and standard deviation of all MNIST training pixels (scaled to 0..1).
MEAN = 0.1307
STD = 0.3081

# The official MD5 of each uncompressed file, as torchvision and everyone else check them.
RAW_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
RESTORE_HINT = "restore the vendored copy with `git checkout -- data/MNIST/raw`"

SAMPLES_PER_DIGIT = 10
FEATURE_MAP_DIGIT = 3

# The validation set: 5,000 of the 60,000 training images, held out of training. Chosen by a
# permutation with a seed of its own, so every run, whatever its training seed, holds out the same
# images and its validation numbers can be compared with another run's; chosen at random rather
# than the file's last 5,000, so that the ten digits come in their usual shares.
VALIDATION_SIZE = 5_000
SPLIT_SEED = 2024


class DataError(RuntimeError):
    """A missing, truncated or corrupt MNIST file; the message says which and how to fix it."""


@dataclass(frozen=True)
class Mnist:
    """MNIST in memory as its original bytes (a quarter of the memory of floats); the normalized
    images the network sees are made from them when asked."""

    train_pixels: torch.Tensor  # uint8 [60000, 28, 28], the original bytes
    train_labels: torch.Tensor  # int64 [60000]
    test_labels: torch.Tensor  # int64 [10000]
    test_pixels: torch.Tensor  # uint8 [10000, 28, 28], the original bytes
    checksums: dict[str, str]  # uncompressed file name -> MD5

    @property
    def train_images(self) -> torch.Tensor:
        """All training images normalized, float32 [60000, 1, 28, 28]: a new 188 MB tensor on each
        use, for looking at the data; training normalizes each batch instead."""
        return normalize(self.train_pixels)

    @property
    def test_images(self) -> torch.Tensor:
        """All test images normalized, float32 [10000, 1, 28, 28], a new tensor on each use."""
        return normalize(self.test_pixels)


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [N, 28, 28] -> float32 images [N, 1, 28, 28] with mean 0 and std 1."""
    images = pixels.float()  # the only copy: the steps below work in place, no temporaries
    return images.div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _checked(content: bytes, name: str, source: Path) -> bytes:
    """`content` when its MD5 is the official one for `name`, else DataError naming `source`."""
    actual = hashlib.md5(content).hexdigest()
    if actual != RAW_FILES[name]:
        raise DataError(
            f"{source} is corrupt: MD5 {actual} of its content, expected {RAW_FILES[name]}; "
            f"{RESTORE_HINT}"
        )
    return content


def vendored_file(root: Path, name: str) -> bytes:
    """The MD5-checked content of one vendored archive, root/MNIST/raw/NAME.gz, read directly."""
    archive = Path(root) / "MNIST" / "raw" / f"{name}.gz"
    try:
        content = gzip.decompress(archive.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{archive} is missing; {RESTORE_HINT}") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{archive} is truncated or corrupt ({error}); {RESTORE_HINT}") from None
    return _checked(content, name, archive)


def _download(root: Path, missing: Path) -> None:
    """The fallback when the vendored files are absent: torchvision's own download (imported
    only here: importing torchvision costs a second and 160 MB that no other stage needs)."""
    import torchvision

    try:
        for train in (True, False):
            torchvision.datasets.MNIST(root, train=train, download=True)
    except Exception as error:  # torchvision raises several kinds; all mean "no data"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"{missing} is missing and downloading MNIST failed ({reason}); {RESTORE_HINT}"
        ) from None


def raw_file(root: Path, name: str) -> bytes:
    """The MD5-checked content of one uncompressed MNIST file.

    Read from root/MNIST/raw/NAME when that copy is intact, else from the vendored NAME.gz (and
    extracted there for next time, when the folder is writable: the copy is only a shortcut);
    downloaded only when the .gz is absent too.
    """
    raw = Path(root) / "MNIST" / "raw"
    target, archive = raw / name, raw / f"{name}.gz"
    with suppress(FileNotFoundError):
        content = target.read_bytes()
        if hashlib.md5(content).hexdigest() == RAW_FILES[name]:
            return content
    if archive.exists():
        content = vendored_file(root, name)
        with suppress(OSError):  # a read-only or full disk: go on from memory
            atomic_write_bytes(target, content)
        return content
    if not target.exists():
        _download(Path(root), archive)
    return _checked(target.read_bytes(), name, target)


def prepare_raw_files(root: Path = DEFAULT_DATA_DIR) -> dict[str, str]:
    """Make sure root/MNIST/raw holds the four uncompressed files with their official MD5s.

    Extracts each vendored .gz when needed; downloads only when the .gz files are absent.
    Returns the checksums, for the record.
    """
    for name in RAW_FILES:
        raw_file(root, name)
    return dict(RAW_FILES)


def parse_idx(content: bytes) -> torch.Tensor:
    """An IDX file, MNIST's format: 2 zero bytes, a type byte (8 = uint8), the number of
    dimensions, each dimension as a big-endian int32, then the values."""
    dims = content[3]
    shape = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(content[4 + 4 * dims :]), dtype=torch.uint8).view(shape)


def read_split(
    root: Path, split: str, read: Callable[[Path, str], bytes] = raw_file
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 pixels [N, 28, 28] and int64 labels [N] of split "train" or "t10k", parsed from the
    MD5-checked bytes (torchvision's MNIST class would prefer a processed/ cache if present)."""
    pixels = parse_idx(read(root, f"{split}-images-idx3-ubyte"))
    labels = parse_idx(read(root, f"{split}-labels-idx1-ubyte")).long()
    return pixels, labels


def load_mnist(root: Path = DEFAULT_DATA_DIR) -> Mnist:
    """Read the four MNIST files, each checked against its official MD5, into tensors."""
    remove_stale_temporaries(Path(root) / "MNIST" / "raw", RAW_FILES.__contains__)
    train_pixels, train_labels = read_split(root, "train")
    test_pixels, test_labels = read_split(root, "t10k")
    return Mnist(
        train_pixels=train_pixels,
        train_labels=train_labels,
        test_labels=test_labels,
        test_pixels=test_pixels,
        checksums=dict(RAW_FILES),
    )


def validation_split(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (ascending) of the training images that training may use, and of the
    VALIDATION_SIZE held out to check it: the last VALIDATION_SIZE of a fixed seeded permutation
    of 0..count-1. Training never samples the second set."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[:-VALIDATION_SIZE].sort().values, order[-VALIDATION_SIZE:].sort().values


def sample_indices(labels: torch.Tensor, per_digit: int = SAMPLES_PER_DIGIT) -> list[int]:
    """Test-set indices of the first `per_digit` images of each digit, digits 0..9 in order."""
    return [
        index
        for digit in range(10)
        for index in (labels == digit).nonzero().flatten()[:per_digit].tolist()
    ]


def feature_map_index(labels: torch.Tensor, digit: int = FEATURE_MAP_DIGIT) -> int:
    """Test-set index of the image whose feature maps the demo draws: the first 3."""
    return int((labels == digit).nonzero()[0])
