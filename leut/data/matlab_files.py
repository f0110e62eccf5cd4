"""MATLAB ``.mat`` files: numeric arrays and cell arrays of strings, in MATLAB's shapes.

Version 7.3 files are HDF5 with a 512-byte MATLAB header block (read with h5py): each variable is a dataset with a
``MATLAB_class`` attribute, stored column-major, so its HDF5 shape is the MATLAB shape reversed; a struct is a group;
a cell array is a dataset of object references into ``/#refs#``; a string is a ``uint16`` array of UTF-16 code
units (``MATLAB_class = 'char'``). Older versions (v5/v7) are read with ``scipy.io.loadmat``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from leut.data.errors import DataFormatError

__all__ = ["is_v73", "read_mat", "write_mat_v73"]


def is_v73(path: os.PathLike | str) -> bool:
  """Whether a .mat file is version 7.3 (HDF5)."""
  return h5py.is_hdf5(path)


def _char(ds: h5py.Dataset) -> str:
  return "".join(map(chr, np.asarray(ds[()], np.uint16).T.ravel()))


def _h5_value(f: h5py.File, obj, path, name):
  if isinstance(obj, h5py.Group):
    return {k: _h5_value(f, v, path, f"{name}.{k}") for k, v in obj.items()}
  cls = obj.attrs.get("MATLAB_class", b"")
  cls = cls.decode() if isinstance(cls, bytes | np.bytes_) else str(cls)
  if cls == "char":
    return _char(obj)
  if cls == "cell":
    refs = obj[()]
    return np.array([_h5_value(f, f[r], path, name) for r in refs.T.ravel()], dtype=object).reshape(refs.shape[::-1])
  if obj.attrs.get("MATLAB_empty", 0):
    return np.zeros((0,))
  return np.asarray(obj[()]).T


def read_mat(path: os.PathLike | str, names: Sequence[str]) -> dict[str, object]:
  """Variables ``names`` of a .mat file: numeric arrays in MATLAB's shape, strings, cell arrays (object arrays),
  structs (dicts).

  Raises:
    DataFormatError: unreadable file, or a variable that is not there (naming the variables that are).
  """
  path = Path(path)
  try:
    if is_v73(path):
      with h5py.File(path, "r") as f:
        have = [k for k in f if not k.startswith("#")]
        missing = [n for n in names if n not in f]
        if missing:
          raise DataFormatError(path, f"no variable(s) {missing}; variables: {have}")
        return {n: _h5_value(f, f[n], path, n) for n in names}
    raw = scipy.io.loadmat(path, variable_names=list(names), simplify_cells=True)
  except (OSError, ValueError, NotImplementedError) as e:
    if isinstance(e, DataFormatError):
      raise
    raise DataFormatError(path, f"not a readable MATLAB file (truncated?): {e}") from None
  missing = [n for n in names if n not in raw]
  if missing:
    have = [k for k in scipy.io.whosmat(path)]
    raise DataFormatError(path, f"no variable(s) {missing}; variables: {[h[0] for h in have]}")
  return {n: raw[n] for n in names}


def _header() -> bytes:
  text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime(0))} "
  text += "HDF5 schema 1.00 ."
  head = text.encode("ascii").ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
  return head.ljust(512, b"\x00")


def write_mat_v73(path: os.PathLike | str, variables: Mapping[str, object]) -> Path:
  """Writes a MATLAB 7.3 file: numeric arrays (``double``/``single``/integers), dicts of them (structs), and
  lists of strings (``1 x n`` cell arrays), as MATLAB lays them out (see the module docstring)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
    refs = f.create_group("#refs#")
    counter = [0]

    def put(group, name, value):
      if isinstance(value, Mapping):
        g = group.create_group(name)
        g.attrs["MATLAB_class"] = np.bytes_("struct")
        for k, v in value.items():
          put(g, k, v)
      elif isinstance(value, list | tuple):
        ref_list = []
        for s in value:
          key = f"r{counter[0]}"
          counter[0] += 1
          ds = refs.create_dataset(key, data=np.array([[ord(c)] for c in str(s)], np.uint16))
          ds.attrs["MATLAB_class"] = np.bytes_("char")
          ds.attrs["MATLAB_int_decode"] = np.int32(2)
          ref_list.append(ds.ref)
        cell = group.create_dataset(name, data=np.array(ref_list, dtype=h5py.ref_dtype).reshape(-1, 1))  # 1 x n
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
      else:
        arr = np.asarray(value)
        cls = {"f8": "double", "f4": "single", "i4": "int32", "i8": "int64", "u1": "uint8", "b1": "logical"}[
          arr.dtype.str[1:]
        ]
        ds = group.create_dataset(name, data=arr.T, compression="gzip", compression_opts=3)
        ds.attrs["MATLAB_class"] = np.bytes_(cls)

    for name, value in variables.items():
      put(f, name, value)
  with open(path, "r+b") as fh:
    fh.write(_header())
  return path
