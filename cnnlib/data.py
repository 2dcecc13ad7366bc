"""The factory, stage 1, data: the vendored MNIST archives, checked and held in memory as tensors.

The pixels come from the very bytes whose MD5 was checked (never a cache beside them), stay bytes,
and are normalized a batch at a time, as training and evaluation draw them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_DIR / "data"
# cnnlib works from its repository (`pip install -e .`), where data/ holds the vendored MNIST.
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

# The validation set: 5,000 of the 60,000 training images, held out of training. A permutation
# with a seed of its own picks them, so every run holds out the same images (its validation
# numbers compare with another run's), and at random, so the ten digits come in their usual shares.
VALIDATION_SIZE = 5_000
SPLIT_SEED = 2024


class DataError(RuntimeError):
    """A missing, truncated or corrupt MNIST archive; the message names it and the fix."""


@dataclass(frozen=True)
class Mnist:
    """MNIST in memory as its original bytes (a quarter of the memory of floats)."""

    train_pixels: torch.Tensor  # uint8 [60000, 28, 28]
    train_labels: torch.Tensor  # int64 [60000]
    test_labels: torch.Tensor  # int64 [10000]
    test_pixels: torch.Tensor  # uint8 [10000, 28, 28]

    @property
    def train_images(self) -> torch.Tensor:
        """All training images normalized, float32 [60000, 1, 28, 28]: a new 188 MB tensor."""
        return normalize(self.train_pixels)

    @property
    def test_images(self) -> torch.Tensor:
        """All test images normalized, float32 [10000, 1, 28, 28], a new tensor on each use."""
        return normalize(self.test_pixels)


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [N, 28, 28] -> float32 images [N, 1, 28, 28] with mean 0 and std 1."""
    images = pixels.float()  # the only copy: the steps below work in place
    return images.div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)


def vendored_file(root: Path, name: str) -> bytes:
    """The MD5-checked content of the vendored archive root/MNIST/raw/NAME.gz."""
    archive = Path(root) / "MNIST" / "raw" / f"{name}.gz"
    try:
        content = gzip.decompress(archive.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{archive} is missing; {RESTORE_HINT}") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{archive} is truncated or corrupt ({error}); {RESTORE_HINT}") from None
    actual = hashlib.md5(content).hexdigest()
    if actual != RAW_FILES[name]:
        raise DataError(
            f"{archive} is corrupt: MD5 {actual} of its content, expected {RAW_FILES[name]}; "
            f"{RESTORE_HINT}"
        )
    return content


def parse_idx(content: bytes) -> torch.Tensor:
    """An IDX file, MNIST's format: 2 zero bytes, a type byte (8 = uint8), the number of
    dimensions, each dimension as a big-endian int32, then the values."""
    dims = content[3]
    shape = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(content[4 + 4 * dims :]), dtype=torch.uint8).view(shape)


def read_split(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 pixels [N, 28, 28] and int64 labels [N] of split "train" or "t10k"."""
    pixels = parse_idx(vendored_file(root, f"{split}-images-idx3-ubyte"))
    labels = parse_idx(vendored_file(root, f"{split}-labels-idx1-ubyte")).long()
    return pixels, labels


def load_mnist(root: Path = DEFAULT_DATA_DIR) -> Mnist:
    """The four MNIST archives, each checked against its official MD5, as tensors."""
    train_pixels, train_labels = read_split(root, "train")
    test_pixels, test_labels = read_split(root, "t10k")
    return Mnist(train_pixels, train_labels, test_labels, test_pixels)


def validation_split(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (ascending) of the training images training may use, and of the VALIDATION_SIZE
    held out: the last VALIDATION_SIZE of a fixed seeded permutation of 0..count-1."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[:-VALIDATION_SIZE].sort().values, order[-VALIDATION_SIZE:].sort().values


@functools.lru_cache(maxsize=2)
def _held_out(root: Path, stamp: tuple) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    pixels, labels = read_split(root, "train")
    validation = validation_split(len(labels))[1]
    return {
        "test": read_split(root, "t10k"),
        "validation": (pixels[validation], labels[validation]),
    }


def held_out(root: Path = DEFAULT_DATA_DIR) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The test set and the 5,000 validation images (pixels, labels), as `verify` reads them:
    from the vendored archives, read again whenever one changes."""
    archives = sorted(Path(root, "MNIST", "raw").glob("*.gz"))
    stamp = tuple((path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in archives)
    return _held_out(Path(root), stamp)


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
