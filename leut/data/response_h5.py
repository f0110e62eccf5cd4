"""The THINGS-fMRI single-trial response HDF5 (a pandas fixed-format frame), via h5py.

Layout (PROTOCOL §6.2), as written by ``DataFrame.to_hdf`` for a frame with one row
per voxel and the columns ``voxel_id`` + trial columns 0..T-1:

  /ResponseData                 attrs pandas_type='frame', nblocks=2, ...
    block0_values  (V, T) float  betas, rows = voxels (pandas stores blocks transposed)
    block0_items   (1,) vlen uint8: a pickled object array of the T trial labels
    block1_values  (V, 1) int    voxel ids
    block1_items   (1,) |S8       [b'voxel_id']
    axis0, axis1                  column labels / row index

Only voxel rows that are asked for are read (in contiguous runs), so selecting a
few thousand ROI voxels from a 200k-voxel file needs memory for those rows only.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from typing import NamedTuple

import h5py
import numpy as np

from leut.data.errors import DataFormatError

__all__ = ["ResponseInfo", "response_info", "read_voxel_rows", "read_trial_labels", "write_response_h5"]


class ResponseInfo(NamedTuple):
  """Shape and labels of a response file, read without touching the betas."""

  n_voxels: int
  n_trials: int
  voxel_ids: np.ndarray | None  # V int64, or None when the file has no voxel_id block
  group: str


def _group(f: h5py.File, path, block: str = "block0_values") -> h5py.Group:
  """The frame's group, which must hold `block` (DataFormatError naming `path` otherwise)."""
  if "ResponseData" in f:
    g = f["ResponseData"]
    if not isinstance(g, h5py.Group) or block not in g:
      keys = list(g) if isinstance(g, h5py.Group) else []
      raise DataFormatError(
        path, f"group /ResponseData has no {block} (truncated or not a response file?); it has {keys}"
      )
    return g
  groups = [k for k in f if isinstance(f[k], h5py.Group) and "block0_values" in f[k]]
  if len(groups) == 1 and block in f[groups[0]]:
    return f[groups[0]]
  raise DataFormatError(path, f"no 'ResponseData' group with {block}; top-level keys: {list(f)}")


def response_info(path: os.PathLike | str) -> ResponseInfo:
  """Reads the shape and voxel ids of a response file (PROTOCOL §6.2)."""
  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise DataFormatError(path, f"not a readable HDF5 file (truncated?): {e}") from None
  with f:
    g = _group(f, path)
    ds = g["block0_values"]
    if ds.ndim != 2:
      raise DataFormatError(path, f"block0_values must be 2-D (voxels, trials), got shape {ds.shape}")
    ids = None
    if "block1_values" in g:
      ids = np.asarray(g["block1_values"][:, 0], np.int64)
      if ids.shape[0] != ds.shape[0]:
        raise DataFormatError(
          path, f"block1_values has {ids.shape[0]} voxel ids for {ds.shape[0]} rows of block0_values"
        )
    return ResponseInfo(int(ds.shape[0]), int(ds.shape[1]), ids, g.name)


def _contiguous_runs(rows_sorted: np.ndarray) -> list[tuple[int, int, int]]:
  """(output offset, start, stop) of each run of consecutive row indices."""
  breaks = np.flatnonzero(np.diff(rows_sorted) != 1) + 1
  starts = np.concatenate([[0], breaks])
  stops = np.concatenate([breaks, [rows_sorted.size]])
  return [(int(a), int(rows_sorted[a]), int(rows_sorted[b - 1]) + 1) for a, b in zip(starts, stops)]


def _chunk_slabs(rows_sorted: np.ndarray, chunk_rows: int):
  """(positions in rows, slab start, slab stop) per group of rows sharing an HDF5 row-chunk."""
  chunk_id = rows_sorted // chunk_rows
  breaks = np.flatnonzero(np.diff(chunk_id)) + 1
  for idx in np.split(np.arange(rows_sorted.size), breaks):
    yield idx, int(rows_sorted[idx[0]]), int(rows_sorted[idx[-1]]) + 1


def read_voxel_rows(path: os.PathLike | str, rows, *, progress=None, max_slab_bytes: int = 256 * 2**20) -> np.ndarray:
  """Reads the betas of voxel ``rows`` as float32 (T, len(rows)), trials x voxels.

  Contiguous (unchunked) files are read run by run of consecutive rows straight into
  the output. Chunked (e.g. compressed) files are read one row-chunk slab at a time,
  so no chunk is decompressed twice; the slab is capped at ``max_slab_bytes``.
  The result is a transposed view of a (V, T) array: memory is only the output.

  Args:
    path: response HDF5.
    rows: strictly increasing voxel row indices.
    progress: optional callable(n_rows_done) for progress bars.
    max_slab_bytes: largest slab read at once from a chunked file.
  """
  rows = np.asarray(rows, np.int64)
  if rows.size and np.any(np.diff(rows) <= 0):
    raise ValueError("rows must be strictly increasing")
  try:
    return _read_rows(path, rows, progress, max_slab_bytes)
  except OSError as e:  # h5py reports truncated/corrupt data as OSError
    raise DataFormatError(path, f"cannot read voxel rows (truncated or corrupt?): {e}") from None


def _read_rows(path, rows: np.ndarray, progress, max_slab_bytes: int) -> np.ndarray:
  with h5py.File(path, "r") as f:
    ds = _group(f, path)["block0_values"]
    n_t = ds.shape[1]
    out_VxT = np.empty((rows.size, n_t), np.float32)
    chunk_rows = ds.chunks[0] if ds.chunks is not None else 0
    slab_ok = chunk_rows and chunk_rows * n_t * ds.dtype.itemsize <= max_slab_bytes
    if rows.size and slab_ok:
      for idx, lo, hi in _chunk_slabs(rows, chunk_rows):
        slab = ds[lo:hi]
        out_VxT[idx] = slab[rows[idx] - lo]
        if progress is not None:
          progress(idx.size)
    elif rows.size:
      for off, lo, hi in _contiguous_runs(rows):
        # HDF5 converts float64 on disk to float32 in place; no float64 copy is made.
        ds.read_direct(out_VxT, np.s_[lo:hi, :], np.s_[off : off + hi - lo, :])
        if progress is not None:
          progress(hi - lo)
  return out_VxT.T


def _pickled(obj) -> np.ndarray:
  return np.frombuffer(pickle.dumps(obj, protocol=2), np.uint8)


def write_response_h5(
  path: os.PathLike | str,
  voxel_ids_V,
  trial_labels_T,
  blocks_VxT: Iterable[np.ndarray],
  *,
  dtype=np.float32,
  chunks: tuple[int, int] | None = None,
  compression: str | None = None,
) -> None:
  """Writes a response file in the pandas fixed-format layout, block of voxel rows by block.

  Args:
    path: output file.
    voxel_ids_V: voxel id of every row.
    trial_labels_T: trial column labels (pickled like pandas' object-dtype items).
    blocks_VxT: successive row blocks (v_i, T) whose row counts sum to V.
    dtype: on-disk float dtype of block0_values.
    chunks, compression: HDF5 storage of block0_values (default contiguous, like pandas
      without ``complevel``).
  """
  voxel_ids = np.asarray(voxel_ids_V, np.int64)
  labels = np.asarray(list(trial_labels_T), dtype=object)
  n_v, n_t = voxel_ids.size, labels.size
  vlen = h5py.vlen_dtype(np.uint8)
  with h5py.File(path, "w") as f:
    g = f.create_group("ResponseData")
    for k, v in dict(
      pandas_type="frame",
      pandas_version="0.15.2",
      encoding="UTF-8",
      errors="strict",
      ndim=2,
      nblocks=2,
      axis0_variety="regular",
      axis1_variety="regular",
      block0_items_variety="regular",
      block1_items_variety="regular",
    ).items():
      g.attrs[k] = v
    ds = g.create_dataset("block0_values", (n_v, n_t), dtype=dtype, chunks=chunks, compression=compression)
    ds.attrs["transposed"] = 1
    lo = 0
    for block in blocks_VxT:
      block = np.asarray(block)
      if block.ndim != 2 or block.shape[1] != n_t:
        raise ValueError(f"block of shape {block.shape} does not have {n_t} trial columns")
      ds[lo : lo + block.shape[0]] = block
      lo += block.shape[0]
    if lo != n_v:
      raise ValueError(f"blocks supplied {lo} rows for {n_v} voxel ids")
    items = g.create_dataset("block0_items", (1,), dtype=vlen)
    items[0] = _pickled(labels)
    g.create_dataset("block1_values", data=voxel_ids[:, None])
    g.create_dataset("block1_items", data=np.array([b"voxel_id"]))
    axis0 = g.create_dataset("axis0", (1,), dtype=vlen)
    axis0[0] = _pickled(np.concatenate([np.array(["voxel_id"], object), labels]))
    g.create_dataset("axis1", data=np.arange(n_v, dtype=np.int64))


def read_trial_labels(path: os.PathLike | str) -> list:
  """The trial column labels stored in ``block0_items`` (pickled or plain array)."""
  with h5py.File(path, "r") as f:
    ds = _group(f, path, "block0_items")["block0_items"]
    if ds.dtype.kind == "O" or h5py.check_vlen_dtype(ds.dtype) is not None:
      return list(pickle.loads(ds[0].tobytes()))
    return [x.decode() if isinstance(x, bytes) else x for x in ds[()].tolist()]
