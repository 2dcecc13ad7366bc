"""The factory, data: the vendored MNIST archives, MD5-checked and held in memory as their bytes,
never read from a cache beside them; a batch is normalized as it is drawn."""

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
MEAN = 0.1307  # the mean and standard deviation of all MNIST training pixels (scaled to 0..1)
STD = 0.3081
RAW_FILES = {  # the official MD5 of each uncompressed file, as torchvision checks them
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
RESTORE_HINT = "restore the vendored copy with `git checkout -- data/MNIST/raw`"
# The validation set: 5,000 training images, never trained on, drawn by a seed of its own, so
# every run holds out the same ones and the ten digits come in their usual shares.
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
        """All training images normalized [60000, 1, 28, 28]: a new 188 MB tensor each time."""
        return normalize(self.train_pixels)

    @property
    def test_images(self) -> torch.Tensor:
        """All test images normalized [10000, 1, 28, 28], a new tensor each time."""
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
    actual, expected = hashlib.md5(content).hexdigest(), RAW_FILES[name]
    if actual != expected:
        message = f"MD5 {actual} of its content, expected {expected}; {RESTORE_HINT}"
        raise DataError(f"{archive} is corrupt: {message}")
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


def held_out(root: Path = DEFAULT_DATA_DIR) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The test set and the 5,000 validation images (pixels, labels), as `verify` reads them:
    from the vendored archives, read again whenever one changes."""
    archives = sorted(Path(root, "MNIST", "raw").glob("*.gz"))
    stamp = tuple((path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in archives)
    return _held_out(Path(root), stamp)


@functools.lru_cache(maxsize=2)
def _held_out(root: Path, stamp: tuple) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    pixels, labels = read_split(root, "train")
    validation = validation_split(len(labels))[1]
    return {
        "test": read_split(root, "t10k"),
        "validation": (pixels[validation], labels[validation]),
    }


def sample_indices(labels: torch.Tensor, per_digit: int = 10) -> list[int]:
    """Test-set indices of the first `per_digit` images of each digit, digits 0..9 in order."""
    digits = [(labels == digit).nonzero().flatten()[:per_digit] for digit in range(10)]
    return torch.cat(digits).tolist()


def feature_map_index(labels: torch.Tensor, digit: int = 3) -> int:
    """Test-set index of the image whose feature maps the demo draws: the first 3."""
    return int((labels == digit).nonzero()[0])
