"""CIFAR-10 archives: the real pickle/binary layouts, round trips and error messages."""

from __future__ import annotations

import pickle
import shutil
import struct
import tarfile

import numpy as np
import pytest

from leut.data import DataFormatError, MissingDatasetError, load_cifar10, write_cifar10
from leut.data.py2pickle import dumps_py2


def py2_pickle_of_batch(data_Nx3072: np.ndarray, labels) -> bytes:
  """A batch dict exactly as Python 2's cPickle (protocol 2) writes it, memo opcodes included."""
  n = data_Nx3072.shape[0]
  raw = data_Nx3072.tobytes()
  out = b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04"
  out += b"K\x00\x85U\x01b\x87Rq\x05(K\x01K" + bytes([n]) + b"M\x00\x0c\x86cnumpy\ndtype\nq\x06"
  out += b"U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
  out += b"T" + struct.pack("<I", len(raw)) + raw + b"tbU\x06labelsq\x08]q\t("
  out += b"".join(b"K" + bytes([y]) for y in labels) + b"eU\x0bbatch_labelq\nU\x04testq\x0bu."
  return out


def test_hand_made_py2_pickle_is_read_with_the_cifar_pixel_layout(tmp_path):
  n = 4
  data = np.random.default_rng(0).integers(0, 256, (n, 3072), dtype=np.uint8)
  folder = tmp_path / "cifar-10-batches-py"
  folder.mkdir()
  for i in range(1, 6):
    (folder / f"data_batch_{i}").write_bytes(py2_pickle_of_batch(data, [i, 0, 9, 3]))
  (folder / "test_batch").write_bytes(py2_pickle_of_batch(data[:2], [7, 1]))
  (folder / "batches.meta").write_bytes(
    b"\x80\x02}q\x01(U\x0blabel_namesq\x02]q\x03("
    + b"".join(b"U" + bytes([len(c)]) + c for c in [b"c%d" % k for k in range(10)])
    + b"eu."
  )
  got = load_cifar10(tmp_path)
  assert got.class_names == tuple(f"c{k}" for k in range(10))
  assert got.train_images.shape == (20, 32, 32, 3) and got.train_images.dtype == np.uint8
  np.testing.assert_array_equal(got.train_labels[:4], [1, 0, 9, 3])
  np.testing.assert_array_equal(got.test_labels, [7, 1])
  for img, row in ((got.train_images[2], data[2]), (got.test_images[1], data[1])):
    for r, c, ch in [(0, 0, 0), (0, 1, 0), (1, 0, 0), (5, 17, 1), (31, 31, 2)]:
      assert img[r, c, ch] == row[ch * 1024 + r * 32 + c]  # R, G, B planes, row-major


def test_py2pickle_writes_python2_opcodes():
  got = dumps_py2({b"a": [1, 300], b"d": np.array([[1, 2]], np.uint8)})
  assert got.startswith(b"\x80\x02}(U\x01a](K\x01M,\x01eU\x01dcnumpy.core.multiarray\n_reconstruct\n")
  assert b"_codecs" not in got  # Python 3 would encode bytes through _codecs.encode
  back = pickle.loads(got, encoding="bytes")
  assert back[b"a"] == [1, 300] and back[b"d"].tolist() == [[1, 2]]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
  root = tmp_path_factory.mktemp("cifar")
  write_cifar10(root / "py", n_train=60, n_test=20, seed=3)
  write_cifar10(root / "bin", n_train=60, n_test=20, seed=3, fmt="binary")
  return root


def test_round_trip_python_and_binary_formats_agree(synthetic):
  a = load_cifar10(synthetic / "py")
  b = load_cifar10(synthetic / "bin" / "cifar-10-batches-bin")
  assert a.train_images.shape == (60, 32, 32, 3) and a.test_images.shape == (20, 32, 32, 3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert a.class_names[0] == "disc" and len(a.class_names) == 10
  assert np.bincount(a.train_labels, minlength=10).tolist() == [6] * 10
  # the file holds exactly what the loader returns, in the official row layout
  raw = pickle.loads((synthetic / "py" / "cifar-10-batches-py" / "data_batch_2").read_bytes(), encoding="bytes")
  assert raw[b"batch_label"] == b"training batch 2 of 5" and len(raw[b"filenames"]) == 12
  np.testing.assert_array_equal(raw[b"data"].reshape(12, 3, 32, 32).transpose(0, 2, 3, 1), a.train_images[12:24])
  np.testing.assert_array_equal(raw[b"labels"], a.train_labels[12:24])


def _tar(src, dst, arcname):
  with tarfile.open(dst, "w:gz") as tar:
    tar.add(src, arcname=arcname)


def test_tar_gz_archives_are_read_in_memory(synthetic, tmp_path):
  _tar(synthetic / "py" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py")
  _tar(synthetic / "bin" / "cifar-10-batches-bin", tmp_path / "b.tar.gz", "cifar-10-batches-bin")
  ref = load_cifar10(synthetic / "py")
  for got in (load_cifar10(tmp_path), load_cifar10(tmp_path / "b.tar.gz")):
    np.testing.assert_array_equal(got.train_images, ref.train_images)
    np.testing.assert_array_equal(got.test_labels, ref.test_labels)
  assert not (tmp_path / "cifar-10-batches-py").exists()  # nothing extracted
  data = (tmp_path / "b.tar.gz").read_bytes()
  (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
  with pytest.raises(DataFormatError, match=r"cut\.tar\.gz.*truncated"):
    load_cifar10(tmp_path / "cut.tar.gz")


def test_truncated_pickle_names_the_file(synthetic, tmp_path):
  folder = tmp_path / "cifar-10-batches-py"
  shutil.copytree(synthetic / "py" / "cifar-10-batches-py", folder)
  f = folder / "data_batch_3"
  f.write_bytes(f.read_bytes()[:5000])
  with pytest.raises(DataFormatError, match=r"data_batch_3: not a readable pickle \(truncated"):
    load_cifar10(tmp_path)


def test_inconsistent_batches(tmp_path):
  folder = tmp_path / "cifar-10-batches-py"
  write_cifar10(tmp_path, n_train=10, n_test=5)
  bad = {b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]}
  (folder / "data_batch_4").write_bytes(dumps_py2(bad))
  with pytest.raises(DataFormatError, match=r"data_batch_4: 3 images but 2 labels"):
    load_cifar10(folder)
  (folder / "data_batch_4").write_bytes(dumps_py2({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}))
  with pytest.raises(DataFormatError, match=r"data_batch_4: b'data' must be uint8 of shape \(N, 3072\)"):
    load_cifar10(folder)


def test_truncated_binary_batch(synthetic, tmp_path):
  folder = tmp_path / "cifar-10-batches-bin"
  shutil.copytree(synthetic / "bin" / "cifar-10-batches-bin", folder)
  f = folder / "test_batch.bin"
  f.write_bytes(f.read_bytes()[:-10])
  with pytest.raises(DataFormatError, match=r"test_batch\.bin: size .* not a positive multiple"):
    load_cifar10(tmp_path)


def test_missing_dataset_says_where_to_get_it(tmp_path):
  with pytest.raises(MissingDatasetError, match=r"toronto\.edu.*data\.cifar_dir"):
    load_cifar10(tmp_path / "nothing")
  (tmp_path / "cifar-10-batches-py").mkdir()
  with pytest.raises(MissingDatasetError, match=r"data_batch_1 is missing"):
    load_cifar10(tmp_path)


def test_a_bad_label_is_blamed_on_the_batch_that_holds_it(tmp_path):
  folder = tmp_path / "cifar-10-batches-py"
  write_cifar10(tmp_path, n_train=10, n_test=5)
  batch = pickle.loads((folder / "data_batch_4").read_bytes(), encoding="bytes")
  batch[b"labels"] = [10] + list(batch[b"labels"][1:])
  (folder / "data_batch_4").write_bytes(dumps_py2(batch))
  with pytest.raises(DataFormatError, match=r"data_batch_4: labels outside 0\.\.9"):
    load_cifar10(folder)
