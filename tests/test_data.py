"""The data stage: vendored files, official checksums, normalization, and clear errors."""

import gzip
import shutil
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
    md5_of,
    prepare_raw_files,
    sample_indices,
)

RAW = DEFAULT_DATA_DIR / "MNIST" / "raw"
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A private copy of the vendored .gz files, as a fresh clone has them."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copy(RAW / f"{name}.gz", raw / f"{name}.gz")
    return tmp_path


def test_the_four_archives_are_vendored():
    assert sorted(path.name for path in RAW.glob("*.gz")) == sorted(f"{n}.gz" for n in RAW_FILES)


def test_extracted_files_carry_the_official_md5(data_root: Path):
    assert prepare_raw_files(data_root) == RAW_FILES
    for name, md5 in RAW_FILES.items():
        assert md5_of(data_root / "MNIST" / "raw" / name) == md5


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


def test_pixels_are_the_bytes_torchvision_reads(mnist):
    test = torchvision.datasets.MNIST(DEFAULT_DATA_DIR, train=False, download=False)
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


def test_a_damaged_extracted_file_is_restored_from_its_archive(data_root: Path):
    prepare_raw_files(data_root)
    target = data_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    target.write_bytes(b"\x00" + target.read_bytes()[1:])
    prepare_raw_files(data_root)
    assert md5_of(target) == RAW_FILES["t10k-labels-idx1-ubyte"]


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


def test_an_archive_with_the_wrong_content_fails_its_md5(data_root: Path):
    archive = data_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(archive.read_bytes()))
    content[100] ^= 0xFF
    archive.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz is corrupt: MD5 [0-9a-f]{32}"):
        load_mnist(data_root)


def test_a_corrupt_file_without_its_archive_is_named(data_root: Path):
    prepare_raw_files(data_root)
    raw = data_root / "MNIST" / "raw"
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte is corrupt"):
        prepare_raw_files(data_root)


def test_missing_files_fall_back_to_a_download_whose_failure_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # torchvision's real download code, pointed at a mirror that does not exist (no network here)
    monkeypatch.setattr(
        torchvision.datasets.MNIST, "mirrors", [(tmp_path / "no-mirror").as_uri() + "/"]
    )
    with pytest.raises(DataError) as caught:
        load_mnist(tmp_path)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz is missing and downloading MNIST failed" in message
    assert "git checkout -- data/MNIST/raw" in message
    assert "\n" not in message
