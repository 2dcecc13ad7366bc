"""Stage 1, data: the vendored MNIST files, checked and loaded once into in-memory tensors.

Every later stage works on these tensors: no per-sample PIL or transform work. The pixels stay
bytes and are normalized a batch at a time, as training and evaluation draw them.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from cnnlib.files import atomic_write_bytes

REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_DIR / "data"

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


def _extract(archive: Path, target: Path) -> None:
    try:
        content = gzip.decompress(archive.read_bytes())
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{archive} is truncated or corrupt ({error}); {RESTORE_HINT}") from None
    atomic_write_bytes(target, content)


def _download(root: Path, missing: Path) -> None:
    """The fallback when the vendored files are absent: torchvision's own download."""
    try:
        for train in (True, False):
            torchvision.datasets.MNIST(root, train=train, download=True)
    except Exception as error:  # torchvision raises several kinds; all mean "no data"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"{missing} is missing and downloading MNIST failed ({reason}); {RESTORE_HINT}"
        ) from None


def prepare_raw_files(root: Path = DEFAULT_DATA_DIR) -> dict[str, str]:
    """Make sure root/MNIST/raw holds the four uncompressed files with their official MD5s.

    Extracts each vendored .gz when needed; downloads only when the .gz files are absent.
    Returns the checksums, for the record.
    """
    raw = Path(root) / "MNIST" / "raw"
    for name, expected in RAW_FILES.items():
        target, archive = raw / name, raw / f"{name}.gz"
        if target.exists() and md5_of(target) == expected:
            continue
        if archive.exists():
            _extract(archive, target)
        elif not target.exists():
            _download(Path(root), archive)
        actual = md5_of(target)
        if actual != expected:
            source = archive if archive.exists() else target
            raise DataError(
                f"{source} is corrupt: MD5 {actual} of its content, expected {expected}; "
                f"{RESTORE_HINT}"
            )
    return dict(RAW_FILES)


def load_mnist(root: Path = DEFAULT_DATA_DIR) -> Mnist:
    """Check the raw files, then read them with torchvision's own MNIST dataset class."""
    checksums = prepare_raw_files(root)
    train = torchvision.datasets.MNIST(root, train=True, download=False)
    test = torchvision.datasets.MNIST(root, train=False, download=False)
    return Mnist(
        train_pixels=train.data,
        train_labels=train.targets,
        test_labels=test.targets,
        test_pixels=test.data,
        checksums=checksums,
    )


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
