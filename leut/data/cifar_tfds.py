"""CIFAR-10 from a prepared TensorFlow Datasets folder, read with ``tfds.data_source`` (no TensorFlow).

``tfds.data_source`` reads the ``array_record`` files of a prepared dataset
(``<data_dir>/cifar10/3.0.2/cifar10-{train,test}.array_record-*``) by random access
and decodes the PNG-encoded images with PIL, so TensorFlow need not be installed.
``tfds`` itself is an optional dependency (``pip install leut[tfds]``); it is imported
on first use. ``write_cifar10_tfds`` writes such a folder (with PIL-encoded PNGs and
TFDS's own serializer), which is how the tests build a real one without TensorFlow.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from leut.data.cifar_data import CifarData
from leut.data.errors import MissingDatasetError

__all__ = ["load_cifar10_tfds", "write_cifar10_tfds"]

_VERSION_HINT = (
  "prepare it with `tfds build cifar10 --file_format=array_record --data_dir DIR` "
  "on a machine with TensorFlow, copy DIR here, and point `data.cifar_dir` to DIR"
)


def _split(tfds, data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
  src = tfds.data_source("cifar10", data_dir=str(data_dir), split=split, download=False)
  n = len(src)
  images = np.empty((n, 32, 32, 3), np.uint8)
  labels = np.empty(n, np.int32)
  for lo in range(0, n, 1000):
    for i, ex in enumerate(src.__getitems__(list(range(lo, min(n, lo + 1000))))):
      images[lo + i] = ex["image"]
      labels[lo + i] = ex["label"]
  return images, labels, tuple(src.dataset_info.features["label"].names)


def load_cifar10_tfds(data_dir: os.PathLike | str) -> CifarData:
  """Loads CIFAR-10 from a TFDS ``data_dir`` holding a prepared ``cifar10`` in array_record format.

  Raises:
    MissingDatasetError: no prepared cifar10 (array_record) under ``data_dir``.
  """
  import tensorflow_datasets as tfds  # optional dependency, imported on use

  data_dir = Path(data_dir).expanduser()
  if not any((data_dir / "cifar10").glob("*/dataset_info.json")):
    raise MissingDatasetError(
      f"no prepared TFDS cifar10 under {data_dir} (expected "
      f"{data_dir}/cifar10/<version>/dataset_info.json); {_VERSION_HINT}. "
      f"Nothing is downloaded automatically.",
      data_dir,
    )
  try:
    train_x, train_y, names = _split(tfds, data_dir, "train")
    test_x, test_y, _ = _split(tfds, data_dir, "test")
  except (FileNotFoundError, AssertionError, ValueError) as e:
    raise MissingDatasetError(
      f"TFDS cifar10 under {data_dir} cannot be read as array_record ({type(e).__name__}: {e}); {_VERSION_HINT}.",
      data_dir,
    ) from None
  return CifarData(train_x, train_y, test_x, test_y, names)


def write_cifar10_tfds(data_dir: os.PathLike | str, data: CifarData) -> Path:
  """Writes ``data`` as a prepared TFDS ``cifar10`` (array_record, PNG images); returns its folder."""
  import tensorflow_datasets as tfds
  from array_record.python.array_record_module import ArrayRecordWriter

  builder = tfds.builder("cifar10", data_dir=str(data_dir), file_format="array_record")
  out = Path(builder.data_dir)
  out.mkdir(parents=True, exist_ok=True)
  features = builder.info.features
  features["label"].names = list(data.class_names)
  splits = []
  for split, images, labels in (
    ("train", data.train_images, data.train_labels),
    ("test", data.test_images, data.test_labels),
  ):
    writer = ArrayRecordWriter(str(out / f"cifar10-{split}.array_record-00000-of-00001"), "group_size:1")
    n_bytes = 0
    for i, (img, y) in enumerate(zip(images, labels)):
      png = io.BytesIO()
      Image.fromarray(img).save(png, format="PNG")
      rec = features.serialize_example({"id": f"{split}_{i:05d}", "image": png.getvalue(), "label": int(y)})
      writer.write(rec)
      n_bytes += len(rec)
    writer.close()
    template = tfds.core.ShardedFileTemplate(
      data_dir=str(out), dataset_name="cifar10", split=split, filetype_suffix="array_record"
    )
    splits.append(
      tfds.core.SplitInfo(name=split, shard_lengths=[len(labels)], num_bytes=n_bytes, filename_template=template)
    )
  builder.info.set_splits(tfds.core.SplitDict(splits))
  builder.info.write_to_directory(str(out))
  return out
