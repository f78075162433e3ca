import gzip

import numpy as np
import pytest

from ablation_core.fashion.dataset import DATA_DIR_ENV, load_split, to_grey_tensor


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_split(tmp_path, monkeypatch):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    labels = np.array([0, 7, 9])
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 0x803)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, 0x801)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    return images, labels


def test_load_split_reads_idx(tiny_split):
    images, labels = tiny_split

    split = load_split("test")

    assert split.images.shape == (3, 28, 28)
    assert np.array_equal(split.images, images.astype(np.uint8))
    assert split.labels.tolist() == labels.tolist()


def test_load_split_rejects_unknown_split(tiny_split):
    with pytest.raises(ValueError, match="'valid'"):
        load_split("valid")


def test_load_split_reports_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))

    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_split("train")


def test_load_split_rejects_wrong_magic(tmp_path, monkeypatch):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((1, 28, 28)), 0x801)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(1), 0x801)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))

    with pytest.raises(ValueError, match="magic"):
        load_split("test")


def test_to_grey_tensor_pads_to_32():
    images = np.full((2, 28, 28), 255, dtype=np.uint8)

    grey = to_grey_tensor(images)

    assert grey.shape == (2, 1, 32, 32)
    assert float(grey[0, 0, 2, 2]) == 1.0
    assert float(grey[0, 0, 0, 0]) == 0.0
    assert float(grey[0, 0, 31, 31]) == 0.0
