"""The data stage: vendored files, official checksums, normalization, and clear errors."""

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torchvision

from cnnlib.data import (
    DEFAULT_DATA_DIR,
    MEAN,
    RAW_FILES,
    STD,
    DataError,
    feature_map_index,
    load_mnist,
    read_split,
    sample_indices,
)

RAW = DEFAULT_DATA_DIR / "MNIST" / "raw"
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A private copy of the vendored .gz files, as a fresh clone has them (writable, even when
    the clone's own are not)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copyfile(RAW / f"{name}.gz", raw / f"{name}.gz")
    return tmp_path


def test_the_four_archives_are_vendored():
    assert sorted(path.name for path in RAW.glob("*.gz")) == sorted(f"{n}.gz" for n in RAW_FILES)


def test_mnist_in_memory_has_the_official_shapes_and_class_counts(mnist):
    assert mnist.train_images.shape == (60_000, 1, 28, 28)
    assert mnist.train_images.dtype == torch.float32
    assert mnist.test_images.shape == (10_000, 1, 28, 28)
    assert mnist.test_pixels.shape == (10_000, 28, 28)
    assert mnist.test_pixels.dtype == torch.uint8
    assert torch.bincount(mnist.train_labels).tolist() == TRAIN_COUNTS
    assert torch.bincount(mnist.test_labels).tolist() == TEST_COUNTS


def test_images_are_normalized_once_with_the_mnist_mean_and_std(mnist):
    expected = (mnist.test_pixels.float() / 255 - MEAN) / STD
    assert torch.equal(mnist.test_images[:, 0], expected)
    assert abs(mnist.train_images.mean().item()) < 1e-3  # MEAN is the training-set mean
    assert abs(mnist.train_images.std().item() - 1) < 1e-3  # STD its standard deviation


def test_pixels_are_the_bytes_torchvision_reads(mnist, data_root: Path):
    for name in RAW_FILES:  # torchvision's MNIST class reads the files uncompressed
        archive = data_root / "MNIST" / "raw" / f"{name}.gz"
        archive.with_suffix("").write_bytes(gzip.decompress(archive.read_bytes()))
    test = torchvision.datasets.MNIST(data_root, train=False, download=False)
    assert torch.equal(mnist.test_pixels, test.data)
    assert torch.equal(mnist.test_labels, test.targets)


def test_samples_are_the_first_ten_of_each_digit_in_order(mnist):
    indices = sample_indices(mnist.test_labels)
    labels = mnist.test_labels[indices].tolist()
    assert len(indices) == 100
    assert labels == [digit for digit in range(10) for _ in range(10)]
    for digit in range(10):
        first_ten = (mnist.test_labels == digit).nonzero().flatten()[:10].tolist()
        assert indices[digit * 10 : digit * 10 + 10] == first_ten
    assert indices[:3] == [3, 10, 13]  # the first three zeros of the MNIST test set


def test_the_feature_map_image_is_the_first_three_of_the_test_set(mnist):
    index = feature_map_index(mnist.test_labels)
    assert index == 18
    assert int(mnist.test_labels[index]) == 3
    assert (mnist.test_labels[:index] != 3).all()


def test_a_truncated_archive_is_one_clear_error_naming_it(data_root: Path):
    archive = data_root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(DataError) as caught:
        load_mnist(data_root)
    message = str(caught.value)
    assert str(archive) in message
    assert "truncated or corrupt" in message
    assert "git checkout -- data/MNIST/raw" in message
    assert "\n" not in message


def test_notebook_02_refuses_a_damaged_archive_in_its_first_cell(data_root: Path, tmp_path: Path):
    """`make data` stops in 02's first cell (lecture.setup with writes=True), before training,
    when an archive that verify reads at the end is damaged; 01, 03 and 04 do not check."""
    from cnnlib import lecture

    archive = data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:1000])
    arguments = (tmp_path / "out", 20, 100, 64, 1e-3, 42, "cpu")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is truncated or corrupt"):
        lecture.setup(*arguments, writes=True, data_root=data_root)
    lecture.setup(*arguments, data_root=data_root)  # a reader: no check, no cost


def test_a_missing_archive_is_one_clear_error_naming_it(data_root: Path):
    archive = data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    archive.unlink()
    with pytest.raises(DataError) as caught:
        load_mnist(data_root)
    assert str(caught.value) == (
        f"{archive} is missing; restore the vendored copy with `git checkout -- data/MNIST/raw`"
    )


def test_an_archive_with_the_wrong_content_fails_its_md5(data_root: Path):
    archive = data_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(archive.read_bytes()))
    content[100] ^= 0xFF
    archive.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz is corrupt: MD5 [0-9a-f]{32}"):
        load_mnist(data_root)


# ---------------------------------------------------------------------------------------------
# Only the MD5-checked bytes are loaded: no cache beside them, no writes needed.


def poison_processed_cache(root: Path) -> None:
    """What issue 10 found: torchvision's MNIST class prefers data/MNIST/processed/*.pt when it
    exists. Inverted pixels and shifted labels there, as a stale or tampered cache."""
    processed = root / "MNIST" / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "training.pt"), ("t10k", "test.pt")):
        pixels, labels = read_split(DEFAULT_DATA_DIR, split)
        torch.save((255 - pixels, (labels + 1) % 10), processed / name)


def test_a_poisoned_processed_cache_is_never_loaded(data_root: Path, mnist):
    poison_processed_cache(data_root)
    # the control: torchvision's class does load the poisoned cache
    assert torch.equal(
        torchvision.datasets.MNIST(data_root, train=False).data, 255 - mnist.test_pixels
    )
    loaded = load_mnist(data_root)
    assert torch.equal(loaded.test_pixels, mnist.test_pixels)
    assert torch.equal(loaded.test_labels, mnist.test_labels)
    assert torch.equal(loaded.train_labels, mnist.train_labels)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only folder needs root")


@needs_root
def test_a_read_only_data_folder_still_loads(data_root: Path, tmp_path: Path, mnist):
    mounted = tmp_path / "read-only"
    mounted.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(data_root), str(mounted)], check=True)
    try:
        with pytest.raises(OSError, match="Read-only file system"):
            (mounted / "probe").write_bytes(b"")
        loaded = load_mnist(mounted)  # the .gz files are read; nothing is written
        assert torch.equal(loaded.test_pixels, mnist.test_pixels)
        names = sorted(path.name for path in (mounted / "MNIST" / "raw").iterdir())
        assert names == sorted(f"{name}.gz" for name in RAW_FILES)
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
