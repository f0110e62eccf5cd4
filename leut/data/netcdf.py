"""One labelled array in a NetCDF-4 file as xarray writes it (Brain-Score's assembly format), read with h5py.

A NetCDF-4 file is an HDF5 file. xarray's ``DataArray.to_netcdf`` (which BrainIO uses to package assemblies) stores:

* one data variable (``data`` when BrainIO compresses, else ``__xarray_dataarray_variable__``) whose HDF5 dimension
  list names its dimensions (``presentation``, ``neuroid``, ``time_bin`` for a neural assembly, in any order) and
  whose ``coordinates`` attribute lists the names of its non-index coordinates;
* each coordinate as a 1-D variable attached to one dimension (``stimulus_id`` and ``repetition`` along
  ``presentation``; ``neuroid_id``, ``region``, ``animal`` along ``neuroid``; ``time_bin_start``, ``time_bin_end``
  along ``time_bin``); strings are variable-length UTF-8 (or fixed-width characters along an extra dimension);
* for a dimension without an index variable, an empty "dimension scale" dataset whose ``NAME`` attribute begins with
  "This is a netCDF dimension but not a netCDF variable" (MultiIndex levels are written as plain coordinates);
* attributes (BrainIO: ``identifier``, ``stimulus_set_identifier``) on the data variable, where its
  ``to_dataset(name="data")`` packaging leaves them, or on the file.

Only the coordinates are read when a file is opened; values are read on request, with a slice or sorted indices per
dimension, so one time window or one region of a large assembly needs memory for that part only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from leut.data.errors import DataFormatError

__all__ = ["Coord", "LabelledArray", "open_labelled_array", "read_values", "write_labelled_array"]

DATA_VARIABLES = ("data", "__xarray_dataarray_variable__")
_PHONY = "This is a netCDF dimension but not a netCDF variable."
_INTERNAL = ("coordinates", "DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME")


class Coord(NamedTuple):
  """A coordinate: the dimension it runs along and its values (str arrays for text)."""

  dim: str
  values: np.ndarray


class LabelledArray(NamedTuple):
  """The labels of a NetCDF data variable; its values stay on disk (``read_values``)."""

  path: Path
  variable: str
  dims: tuple[str, ...]
  shape: tuple[int, ...]
  coords: dict[str, Coord]
  attrs: dict[str, object]  # the file's attributes, updated with the data variable's own

  def coord(self, name: str, dim: str) -> np.ndarray:
    """Values of coordinate ``name`` along ``dim``; DataFormatError naming the file when it is missing."""
    c = self.coords.get(name)
    if c is None or c.dim != dim:
      have = sorted(k for k, v in self.coords.items() if v.dim == dim)
      raise DataFormatError(self.path, f"no coordinate {name!r} along {dim!r}; coordinates along {dim!r}: {have}")
    return c.values


def _decode_attr(v):
  if isinstance(v, bytes | np.bytes_):
    return v.decode("utf-8", "replace")
  if isinstance(v, np.ndarray) and v.size == 1:
    return v.reshape(()).item()
  return v


def _dims_of(ds: h5py.Dataset, path) -> tuple[str, ...]:
  if ds.ndim and "DIMENSION_LIST" not in ds.attrs:
    raise DataFormatError(path, f"variable {ds.name!r} has no dimension list (not written by NetCDF-4/xarray?)")
  names = []
  for d in ds.dims:
    if len(d) == 0:
      raise DataFormatError(path, f"variable {ds.name!r} has an axis without a NetCDF dimension")
    names.append(d[0].name.rsplit("/", 1)[-1])
  return tuple(names)


def _decode_values(ds: h5py.Dataset, values: np.ndarray) -> np.ndarray:
  """Text as str arrays (vlen strings, or fixed-width chars along a trailing dimension); _FillValue as NaN."""
  if h5py.check_string_dtype(ds.dtype) is not None or values.dtype.kind in "OS":
    if values.dtype.kind == "S" and values.ndim == 2 and values.dtype.itemsize == 1:  # char array + string dim
      values = values.view(f"S{values.shape[1]}").reshape(values.shape[0])
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.ravel()]).reshape(
      values.shape
    )
  fill = ds.attrs.get("_FillValue")
  if fill is not None and values.dtype.kind == "f" and np.isfinite(np.asarray(fill)).all():
    values = np.where(values == np.asarray(fill).reshape(()), np.nan, values)
  scale, offset = ds.attrs.get("scale_factor"), ds.attrs.get("add_offset")
  if scale is not None or offset is not None:
    values = values * (1.0 if scale is None else float(np.asarray(scale).ravel()[0]))
    values = values + (0.0 if offset is None else float(np.asarray(offset).ravel()[0]))
  return values


def _is_phony(ds: h5py.Dataset) -> bool:
  return _decode_attr(ds.attrs.get("NAME", b"")).startswith(_PHONY)


def open_labelled_array(path: os.PathLike | str, variable: str | None = None) -> LabelledArray:
  """Reads the dimensions, coordinates and attributes of the data variable of a NetCDF-4 file.

  Args:
    path: the ``.nc`` file.
    variable: the data variable; default ``data`` or ``__xarray_dataarray_variable__``, else the one variable with a
      ``coordinates`` attribute.

  Raises:
    DataFormatError: not an HDF5/NetCDF-4 file (NetCDF-3 classic is not supported), no or several data variables, a
      coordinate along an unknown dimension, or a coordinate whose length differs from its dimension's.
  """
  path = Path(path)
  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise DataFormatError(path, f"not a NetCDF-4 (HDF5) file, or truncated: {e}") from None
  with f:
    datasets = {k: v for k, v in f.items() if isinstance(v, h5py.Dataset)}
    if variable is None:
      named = [k for k in DATA_VARIABLES if k in datasets]
      tagged = [k for k, v in datasets.items() if "coordinates" in v.attrs]
      candidates = named or tagged
      if len(candidates) != 1:
        raise DataFormatError(
          path, f"cannot tell the data variable: candidates {candidates}; variables {sorted(datasets)}"
        )
      variable = candidates[0]
    elif variable not in datasets:
      raise DataFormatError(path, f"no variable {variable!r}; variables {sorted(datasets)}")
    var = datasets[variable]
    dims = _dims_of(var, path)
    sizes = dict(zip(dims, var.shape))
    listed = _decode_attr(var.attrs.get("coordinates", b"")).split()
    index_coords = [k for k in dims if k in datasets and not _is_phony(datasets[k])]
    coords = {}
    for name in listed + index_coords:
      if name not in datasets:
        raise DataFormatError(path, f"coordinate {name!r} listed by {variable!r} is not in the file")
      ds = datasets[name]
      cdims = _dims_of(ds, path)
      if not cdims or cdims[0] not in sizes or ds.shape[0] != sizes[cdims[0]]:
        raise DataFormatError(path, f"coordinate {name!r} runs along {cdims} {ds.shape}, not a dimension of {sizes}")
      coords[name] = Coord(cdims[0], _decode_values(ds, ds[()]))
    attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
    attrs.update({k: _decode_attr(v) for k, v in var.attrs.items() if k not in _INTERNAL and not k.startswith("_")})
    return LabelledArray(path, variable, dims, tuple(var.shape), coords, attrs)


def read_values(arr: LabelledArray, index: Mapping[str, slice | np.ndarray] | None = None) -> np.ndarray:
  """Values of ``arr`` (its dimension order), optionally a slice or sorted unique integer indices per dimension.

  HDF5 allows one index list per read, so a second index list is applied after reading (the first list's
  dimension is read selectively). Float ``_FillValue`` entries come back as NaN.
  """
  index = dict(index or {})
  unknown = set(index) - set(arr.dims)
  if unknown:
    raise ValueError(f"{arr.path}: no dimension(s) {sorted(unknown)} in {arr.dims}")
  sel, later, used_list = [], [], False
  for axis, dim in enumerate(arr.dims):
    idx = index.get(dim, slice(None))
    if isinstance(idx, slice):
      sel.append(idx)
      continue
    idx = np.asarray(idx, np.int64)
    if idx.size > 1 and np.any(np.diff(idx) <= 0):
      raise ValueError(f"indices along {dim!r} must be sorted and unique")
    if not used_list:
      sel.append(idx)
      used_list = True
    else:
      sel.append(slice(None))
      later.append((axis, idx))
  with h5py.File(arr.path, "r") as f:
    ds = f[arr.variable]
    values = _decode_values(ds, ds[tuple(sel)])
  for axis, idx in later:
    values = np.take(values, idx, axis=axis)
  return values


def _text(values) -> np.ndarray:
  return np.array([str(v) for v in np.asarray(values).ravel()], dtype=object)


def write_labelled_array(
  path: os.PathLike | str,
  values: np.ndarray,
  dims: Sequence[str],
  coords: Mapping[str, tuple[str, Sequence]],
  attrs: Mapping[str, str] | None = None,
  *,
  variable: str = "data",
) -> Path:
  """Writes one labelled array in the layout xarray + NetCDF-4 give it (see the module docstring).

  Args:
    path: the ``.nc`` file to write.
    values: the data, one axis per entry of ``dims``.
    dims: dimension names.
    coords: name -> (dimension, values): non-index coordinates; text values become variable-length strings.
    attrs: attributes of the data variable (strings), where BrainIO's packaging puts them.
    variable: ``data`` (BrainIO's compressed packaging) or ``__xarray_dataarray_variable__``.
  """
  path = Path(path)
  values = np.asarray(values)
  path.parent.mkdir(parents=True, exist_ok=True)
  compression = dict(compression="gzip", compression_opts=1, shuffle=True)
  with h5py.File(path, "w", libver="earliest") as f:
    f.attrs["_NCProperties"] = np.bytes_(f"version=2,leut,hdf5={h5py.version.hdf5_version}")
    scales = {}
    for i, (dim, n) in enumerate(zip(dims, values.shape)):
      s = f.create_dataset(dim, shape=(n,), dtype=">f4")
      s.make_scale(f"{_PHONY}{n:10d}")
      s.attrs["_Netcdf4Dimid"] = np.int32(i)
      scales[dim] = (i, s)

    def variable_dataset(name, data, var_dims, **extra):
      kind = np.asarray(data).dtype.kind
      if kind in "OSU":
        ds = f.create_dataset(name, data=_text(data), dtype=h5py.string_dtype("utf-8"), **compression)
      else:
        ds = f.create_dataset(name, data=np.asarray(data), **compression)
        if kind == "f":
          ds.attrs["_FillValue"] = np.array([np.nan], ds.dtype)
      for axis, d in enumerate(var_dims):
        ds.dims[axis].attach_scale(scales[d][1])
      ds.attrs["_Netcdf4Coordinates"] = np.array([scales[d][0] for d in var_dims], np.int32)
      for k, v in extra.items():
        ds.attrs[k] = v
      return ds

    for name, (dim, vals) in coords.items():
      if dim not in scales or len(vals) != values.shape[list(dims).index(dim)]:
        raise ValueError(f"coordinate {name!r}: dimension {dim!r} of length {len(vals)} does not match {dims}")
      variable_dataset(name, np.asarray(vals), (dim,))
    extra = {k: np.bytes_(str(v)) for k, v in (attrs or {}).items()}
    variable_dataset(variable, values, tuple(dims), coordinates=np.bytes_(" ".join(coords)), **extra)
  return path
