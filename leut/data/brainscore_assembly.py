"""Macaque recordings packaged by Brain-Score: MajajHong2015 (V4, IT) and FreemanZiemba2013 (V1, V2).

Each release is a NetCDF neural assembly (``assy_<identifier>.nc``, read by ``leut.data.netcdf``) with dimensions
``presentation`` (one per trial: coordinates ``stimulus_id`` or the older ``image_id``, and ``repetition``),
``neuroid`` (``neuroid_id``, ``region``; MajajHong2015 also ``animal``) and ``time_bin`` (``time_bin_start``,
``time_bin_end`` in ms), plus the stimulus set named by its ``stimulus_set_identifier`` attribute, or, for older
packages without one, the public set Brain-Score pairs it with (``leut.data.brainscore_stimuli``). Responses are
prepared as Brain-Score's benchmarks prepare them:

* time: the mean over the time bins inside the dataset's window. MajajHong2015's public assembly has one bin,
  70-170 ms, which is taken as is; FreemanZiemba2013 has 1-ms bins, and bins 50-200 ms are averaged
  (``benchmarks/majajhong2015/benchmark.py`` and ``benchmarks/freemanziemba2013/benchmarks/benchmark.py`` of
  brain-score/vision).
* repetitions: every presentation of a stimulus is averaged, skipping NaN (Brain-Score's ``average_repetition``
  groups by every presentation coordinate but ``repetition``, i.e. by stimulus).
* reliability: split-half consistency over repetitions with the Spearman-Brown correction, per neuroid
  (``responses.split_half_reliability``), Brain-Score's internal-consistency ceiling.

Regions map to ``roi`` and animals to ``subject``; an assembly without an ``animal`` coordinate (FreemanZiemba2013)
has one subject, ``pooled``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from leut.data.brainscore_stimuli import read_stimulus_set
from leut.data.errors import DataFormatError, MissingDatasetError
from leut.data.netcdf import LabelledArray, open_labelled_array, read_values
from leut.data.responses import ResponseData, half_assignments, split_half_reliability, trial_means

__all__ = ["AssemblySpec", "ASSEMBLIES", "assembly_path", "load_brainscore_assembly", "POOLED"]

POOLED = "pooled"


class AssemblySpec(NamedTuple):
  """How Brain-Score prepares one assembly (see the module docstring)."""

  identifier: str  # BrainIO identifier of the public assembly
  regions: tuple[str, ...]
  time_window_ms: tuple[int, int]  # bins with start >= window[0] and end <= window[1] are averaged
  concept_columns: tuple[str, ...]  # stimulus-set columns that name a stimulus's category, first present wins
  stimulus_set: str  # when the file does not name it (older packages carry no stimulus_set_identifier)


ASSEMBLIES = {
  "majajhong2015": AssemblySpec(
    "dicarlo.MajajHong2015.public", ("V4", "IT"), (70, 170), ("object_name",), "dicarlo.hvm-public"
  ),
  "freemanziemba2013": AssemblySpec(
    "movshon.FreemanZiemba2013.public",
    ("V1", "V2"),
    (50, 200),
    ("texture_family", "texture_type"),
    "movshon.FreemanZiemba2013.aperture-public",
  ),
}


def assembly_path(folder: os.PathLike | str, identifier: str) -> Path:
  """``assy_<identifier>.nc`` in ``folder`` or one sub-folder deep (BrainIO's cache puts each file in its own)."""
  folder = Path(folder)
  name = f"assy_{identifier.replace('.', '_')}.nc"
  for base in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())] if folder.is_dir() else []:
    if (base / name).is_file():
      return base / name
  raise MissingDatasetError(
    f"Brain-Score assembly {identifier!r} not found: expected {folder / name} (or in a sub-folder). "
    f"Get it with `leut fetch` and point `data.brain_dir` to the folder.",
    folder / name,
  )


def _time_bins(arr: LabelledArray, window: tuple[int, int]) -> slice | np.ndarray | None:
  if "time_bin" not in arr.dims:
    return None
  start = arr.coord("time_bin_start", "time_bin").astype(np.int64)
  end = arr.coord("time_bin_end", "time_bin").astype(np.int64)
  idx = np.flatnonzero((start >= window[0]) & (end <= window[1]))
  if idx.size == 0:
    bins = list(zip(start.tolist(), end.tolist()))
    raise DataFormatError(arr.path, f"no time bin inside {window[0]}-{window[1]} ms; bins: {bins[:5]}...")
  if np.all(np.diff(idx) == 1):
    return slice(int(idx[0]), int(idx[-1]) + 1)
  return idx


def _stimulus_ids(arr: LabelledArray) -> np.ndarray:
  for name in ("stimulus_id", "image_id"):
    if name in arr.coords and arr.coords[name].dim == "presentation":
      return arr.coords[name].values.astype(str)
  return arr.coord("stimulus_id", "presentation")  # raises, naming what is there


def load_brainscore_assembly(
  folder: os.PathLike | str,
  dataset: str,
  *,
  identifier: str | None = None,
  regions: tuple[str, ...] | None = None,
  n_splits: int = 10,
  seed: int = 0,
  chunk: int = 4096,
) -> ResponseData:
  """Trial-averaged responses and per-neuroid reliability of a Brain-Score assembly and its stimulus set.

  Args:
    folder: where the ``.nc`` and the stimulus set's ``.csv``/``.zip`` are (``data.brain_dir``).
    dataset: ``"majajhong2015"`` or ``"freemanziemba2013"`` (``ASSEMBLIES``).
    identifier: another assembly of the same recordings (e.g. the private one) instead of the public one.
    regions: subset of the dataset's regions.
    n_splits: random split-halves of the repetitions for the reliability.
    seed: seed of those splits.
    chunk: presentations read at a time (bounds memory).

  Returns:
    ResponseData: stimuli in the stimulus set's row order, neuroids grouped by region then subject.

  Raises:
    MissingDatasetError: a file is not there. DataFormatError: the assembly lacks a needed dimension or coordinate,
      a region, or time bins in the window, or names stimuli its stimulus set does not have (each naming the file).
  """
  spec = ASSEMBLIES[dataset]
  path = assembly_path(folder, identifier or spec.identifier)
  arr = open_labelled_array(path)
  for dim in ("presentation", "neuroid"):
    if dim not in arr.dims:
      raise DataFormatError(path, f"no {dim!r} dimension; dimensions: {arr.dims}")
  stim_set_id = arr.attrs.get("stimulus_set_identifier") or (spec.stimulus_set if identifier is None else None)
  if not stim_set_id:
    raise DataFormatError(path, "no attribute 'stimulus_set_identifier' naming the assembly's stimulus set")
  stim_set = read_stimulus_set(folder, str(stim_set_id))

  region_N = arr.coord("region", "neuroid").astype(str)
  regions = tuple(regions or spec.regions)
  missing = [r for r in regions if r not in set(region_N)]
  if missing:
    raise DataFormatError(path, f"no neuroids of region(s) {missing}; regions in the file: {sorted(set(region_N))}")
  animal = arr.coords.get("animal")
  subject_N = animal.values.astype(str) if animal is not None and animal.dim == "neuroid" else None
  if subject_N is None:
    subject_N = np.full(region_N.shape, POOLED)
  keep = np.flatnonzero(np.isin(region_N, regions))
  subjects = list(dict.fromkeys(subject_N[keep]))
  order = np.lexsort(([subjects.index(s) for s in subject_N[keep]], [regions.index(r) for r in region_N[keep]]))
  neuroid_idx = keep[order]  # grouped by region, then subject; read sorted, reordered after
  read_order = np.sort(neuroid_idx)
  back = np.searchsorted(read_order, neuroid_idx)

  stim_P = _stimulus_ids(arr)
  known = stim_set.table["stimulus_id"].to_numpy()
  unknown = sorted(set(stim_P) - set(known))
  if unknown:
    raise DataFormatError(path, f"{len(unknown)} stimulus ids not in {stim_set.csv_path.name}, e.g. {unknown[:3]}")
  stimuli = [s for s in known if s in set(stim_P)]
  code_P = pd.Index(stimuli).get_indexer(stim_P)
  halves_KxP = half_assignments(code_P, n_splits, seed)

  time_idx = _time_bins(arr, spec.time_window_ms)
  s, n = len(stimuli), neuroid_idx.size
  total, count = np.zeros((s, n)), np.zeros((s, n), np.int64)
  half_sums = np.zeros((2, n_splits, s, n))
  half_counts = np.zeros((2, n_splits, s, n), np.int64)
  n_pres = arr.shape[arr.dims.index("presentation")]
  neuroid_sel = slice(None) if read_order.size == arr.shape[arr.dims.index("neuroid")] else read_order
  for lo in range(0, n_pres, chunk):
    index = {"presentation": slice(lo, min(lo + chunk, n_pres)), "neuroid": neuroid_sel}
    if time_idx is not None:
      index["time_bin"] = time_idx
    block = read_values(arr, index).astype(np.float64)
    dims = list(arr.dims)
    if "time_bin" in dims:
      with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins: the mean is NaN, as it should be
        block = np.nanmean(block, axis=dims.index("time_bin"))
      dims.remove("time_bin")
    extra = [d for d in dims if d not in ("presentation", "neuroid")]
    if extra:
      raise DataFormatError(path, f"unexpected dimension(s) {extra}; expected presentation, neuroid, time_bin")
    block_PxN = np.moveaxis(block, [dims.index("presentation"), dims.index("neuroid")], [0, 1])[:, back]
    code = code_P[lo : lo + chunk]
    su, co = trial_means(block_PxN, code, s)
    total += su
    count += co
    for k in range(n_splits):
      for h, rows in enumerate((halves_KxP[k, lo : lo + chunk], ~halves_KxP[k, lo : lo + chunk])):
        su, co = trial_means(block_PxN[rows], code[rows], s)
        half_sums[h, k] += su
        half_counts[h, k] += co
  with np.errstate(invalid="ignore", divide="ignore"):
    mean_SxN = np.where(count > 0, total / count, np.nan)
    half_means = np.where(half_counts > 0, half_sums / half_counts, np.nan)
  reliability = split_half_reliability(half_means[0], half_means[1])

  table = pd.DataFrame(
    {
      "roi": region_N[neuroid_idx],
      "subject": subject_N[neuroid_idx],
      "neuroid_id": arr.coords["neuroid_id"].values[neuroid_idx].astype(str)
      if "neuroid_id" in arr.coords
      else neuroid_idx.astype(str),
      "reliability": reliability,
    }
  )
  for name, c in arr.coords.items():
    if c.dim == "neuroid" and name not in ("region", "animal", "neuroid_id"):
      table[name] = c.values[neuroid_idx]
  return ResponseData(
    dataset=dataset,
    stimuli=tuple(stimuli),
    concepts=tuple(stim_set.labels(stimuli, spec.concept_columns)),
    responses_SxN=mean_SxN.astype(np.float32),
    neuroids=table,
    split_S=None,
    load_images_01=stim_set.load_images_01,
  )
