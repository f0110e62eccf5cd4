"""TFDS cifar10 via ``tfds.data_source`` without TensorFlow: a real array_record folder round trip."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow_datasets")
pytest.importorskip("array_record")

from leut.data import MissingDatasetError, load_cifar10, write_cifar10  # noqa: E402
from leut.data.cifar_tfds import load_cifar10_tfds, write_cifar10_tfds  # noqa: E402


def test_array_record_round_trip_without_tensorflow(tmp_path):
  write_cifar10(tmp_path / "py", n_train=25, n_test=10, seed=5)
  ref = load_cifar10(tmp_path / "py")
  write_cifar10_tfds(tmp_path / "tfds", ref)
  got = load_cifar10_tfds(tmp_path / "tfds")
  assert got.class_names == ref.class_names
  for a, b in zip(got, ref):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_missing_tfds_dir(tmp_path):
  with pytest.raises(MissingDatasetError, match=r"tfds build cifar10.*data\.cifar_dir"):
    load_cifar10_tfds(tmp_path)


def test_load_cifar10_dispatches_to_a_tfds_dir(tmp_path):
  write_cifar10(tmp_path / "py", n_train=10, n_test=5, seed=1)
  ref = load_cifar10(tmp_path / "py")
  write_cifar10_tfds(tmp_path / "tfds", ref)
  np.testing.assert_array_equal(load_cifar10(tmp_path / "tfds").train_images, ref.train_images)
