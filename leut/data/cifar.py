"""CIFAR-10 loader for the official archives: python pickles, binary records, or their .tar.gz.

Accepted ``path`` (first match wins):
  * a folder containing ``cifar-10-batches-py/`` or ``cifar-10-batches-bin/``;
  * one of those folders itself;
  * a folder containing ``cifar-10-python.tar.gz`` or ``cifar-10-binary.tar.gz``;
  * such a ``.tar.gz`` (or ``.tar``) file, read in memory with :mod:`tarfile`;
  * a TFDS ``data_dir`` with a prepared ``cifar10`` in array_record format (``cifar_tfds``).

Python format: each batch is a Python-2 pickle of a dict with bytes keys ``b'data'``
(uint8, N x 3072: the R, then G, then B 32x32 plane, each row-major), ``b'labels'``,
``b'batch_label'`` and ``b'filenames'``; ``batches.meta`` holds ``b'label_names'``.
Binary format: records of 1 label byte + 3072 pixel bytes; ``batches.meta.txt``
lists the class names one per line.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from leut.data.cifar_data import CifarData
from leut.data.errors import DataFormatError, missing_dataset

__all__ = ["CifarData", "load_cifar10", "PY_DIR", "BIN_DIR"]

PY_DIR = "cifar-10-batches-py"
BIN_DIR = "cifar-10-batches-bin"
_ARCHIVES = ("cifar-10-python.tar.gz", "cifar-10-binary.tar.gz")
_PIXELS = 3072
_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def _to_hwc(rows_Nx3072: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(rows_Nx3072.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _parse_pickle(raw: bytes, where: str) -> dict:
  try:
    obj = pickle.loads(raw, encoding="bytes")
  except Exception as e:  # truncated or corrupt pickles raise many different types
    raise DataFormatError(where, f"not a readable pickle (truncated or corrupt?): {type(e).__name__}: {e}") from None
  if not isinstance(obj, dict):
    raise DataFormatError(where, f"expected a pickled dict, got {type(obj).__name__}")
  return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _py_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
  d = _parse_pickle(raw, where)
  missing = [k for k in ("data", "labels") if k not in d]
  if missing:
    raise DataFormatError(where, f"batch dict lacks keys {missing}; has {sorted(d)}")
  data = np.asarray(d["data"])
  if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
    raise DataFormatError(where, f"b'data' must be uint8 of shape (N, {_PIXELS}), got {data.dtype} {data.shape}")
  labels = np.asarray(d["labels"], np.int64)
  if labels.shape != (data.shape[0],):
    raise DataFormatError(where, f"{data.shape[0]} images but {labels.size} labels")
  return _to_hwc(data), labels.astype(np.int32)


def _bin_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
  if len(raw) == 0 or len(raw) % (_PIXELS + 1):
    raise DataFormatError(
      where, f"size {len(raw)} bytes is not a positive multiple of the {_PIXELS + 1}-byte record (truncated?)"
    )
  rec = np.frombuffer(raw, np.uint8).reshape(-1, _PIXELS + 1)
  return _to_hwc(rec[:, 1:]), rec[:, 0].astype(np.int32)


def _read_names_py(raw: bytes, where: str) -> tuple[str, ...]:
  d = _parse_pickle(raw, where)
  if "label_names" not in d:
    raise DataFormatError(where, f"meta dict lacks b'label_names'; has {sorted(d)}")
  return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in d["label_names"])


def _read_names_bin(raw: bytes, where: str) -> tuple[str, ...]:
  return tuple(line.strip() for line in raw.decode("ascii", "replace").splitlines() if line.strip())


def _assemble(read: Callable[[str], bytes], fmt: str, where: Callable[[str], str], train: bool = True) -> CifarData:
  if fmt == "py":
    parse, test_name, meta_name, names = _py_batch, "test_batch", "batches.meta", _read_names_py
  else:
    parse, test_name, meta_name, names = _bin_batch, "test_batch.bin", "batches.meta.txt", _read_names_bin
  train_names = (_TRAIN if fmt == "py" else tuple(n + ".bin" for n in _TRAIN)) if train else ()
  parts = [parse(read(n), where(n)) for n in train_names]
  test_x, test_y = parse(read(test_name), where(test_name))
  class_names = names(read(meta_name), where(meta_name))
  for name, (_, y) in zip(train_names + (test_name,), parts + [(test_x, test_y)]):
    bad = (y < 0) | (y >= len(class_names))
    if bad.any():
      raise DataFormatError(
        where(name),
        f"labels outside 0..{len(class_names) - 1} ({len(class_names)} class names in {meta_name}), e.g. "
        f"{int(y[bad][0])} at row {int(np.flatnonzero(bad)[0])}",
      )
  if not parts:  # the test set only (`load_cifar10(..., train=False)`)
    parts = [(np.zeros((0,) + test_x.shape[1:], test_x.dtype), np.zeros((0,), test_y.dtype))]
  train_x = np.concatenate([p[0] for p in parts])
  train_y = np.concatenate([p[1] for p in parts])
  return CifarData(train_x, train_y, test_x, test_y, class_names)


def _load_dir(folder: Path, fmt: str, train: bool = True) -> CifarData:
  def read(name: str) -> bytes:
    f = folder / name
    if not f.is_file():
      raise missing_dataset("cifar10", folder, f"file {name} is missing")
    return f.read_bytes()

  return _assemble(read, fmt, lambda n: str(folder / n), train)


def _load_tar(archive: Path, train: bool = True) -> CifarData:
  try:
    with tarfile.open(archive, "r:*") as tar:
      members = {}
      for m in tar.getmembers():
        parts = Path(m.name).parts
        if m.isfile() and len(parts) >= 2 and parts[-2] in (PY_DIR, BIN_DIR):
          members[(parts[-2], parts[-1])] = m
      fmt_dir = PY_DIR if any(k[0] == PY_DIR for k in members) else BIN_DIR
      if not any(k[0] == fmt_dir for k in members):
        raise DataFormatError(archive, f"archive holds no {PY_DIR}/ or {BIN_DIR}/ files")

      def read(name: str) -> bytes:
        m = members.get((fmt_dir, name))
        if m is None:
          raise DataFormatError(archive, f"archive lacks {fmt_dir}/{name} (truncated?)")
        return tar.extractfile(m).read()

      return _assemble(read, "py" if fmt_dir == PY_DIR else "bin", lambda n: f"{archive}::{fmt_dir}/{n}", train)
  except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
    if isinstance(e, FileNotFoundError):
      raise
    raise DataFormatError(
      archive, f"cannot read the archive (truncated or corrupt?): {type(e).__name__}: {e}"
    ) from None


def load_cifar10(path: os.PathLike | str, *, train: bool = True) -> CifarData:
  """Loads CIFAR-10 from any official archive layout (see the module docstring).

  Args:
    path: folder or archive; see the module docstring for the accepted layouts.
    train: also read the five training batches; False reads the test batch only (the evaluation needs no training
      image) and returns empty training arrays.

  Returns:
    CifarData with train (50,000 for the official set) and test (10,000) images.

  Raises:
    MissingDatasetError: nothing CIFAR-like at ``path``, or a batch file is missing.
    DataFormatError: a file is truncated or inconsistent (the message names it).

  Example:
    >>> data = load_cifar10("~/data/cifar")  # doctest: +SKIP
    >>> data.train_images.shape
    (50000, 32, 32, 3)
  """
  p = Path(path).expanduser()
  if p.is_file():
    return _load_tar(p, train)
  for d, fmt in ((p / PY_DIR, "py"), (p / BIN_DIR, "bin")):
    if d.is_dir():
      return _load_dir(d, fmt, train)
  if (p / "data_batch_1").is_file() or (p / "test_batch").is_file() or (p.name == PY_DIR and p.is_dir()):
    return _load_dir(p, "py", train)
  if (p / "data_batch_1.bin").is_file() or (p / "test_batch.bin").is_file() or (p.name == BIN_DIR and p.is_dir()):
    return _load_dir(p, "bin", train)
  for name in _ARCHIVES:
    if (p / name).is_file():
      return _load_tar(p / name, train)
  if any((p / "cifar10").glob("*/dataset_info.json")):  # a prepared TFDS data_dir
    from leut.data.cifar_tfds import load_cifar10_tfds

    return load_cifar10_tfds(p)
  raise missing_dataset("cifar10", p, f"no {PY_DIR}/, {BIN_DIR}/ or {_ARCHIVES[0]} there")
