"""THINGS Ventral Stream Spiking Dataset (TVSD; Papale et al. 2025, Neuron): normalised multi-unit activity.

Layout of the release (gin.g-node.org/paolo_papale/TVSD, its README):

  <dir>/monkeyF/THINGS_normMUA.mat   MATLAB 7.3; per electrode (1024 per monkey):
      train_MUA      [electrodes x 22248]        normalised MUA, one presentation per train image
      test_MUA       [electrodes x 100]          mean over the 30 repetitions of each test image
      test_MUA_reps  [electrodes x 100 x 30]     each repetition
      reliab         [electrodes x combinations] split-half reliabilities; their mean is the electrode's
      oracle [electrodes], SNR / lats [electrodes x days], SNR_max [electrodes], tb (time base, ms)
  <dir>/monkeyN/THINGS_normMUA.mat   the same for monkey N
  <dir>/monkey?/_logs/things_imgs.mat   train_imgs / test_imgs structs with cell arrays ``class`` and
      ``things_path`` (``concept\\concept_01b.jpg``), in the order of the columns above

The MUA is already averaged in time windows per area (V1 25-125, V4 50-150, IT 75-175 ms). Electrodes map to areas
by their index (the release's channel order after the documented re-mapping; the same map as Brain-Score's
Papale2025 packaging): monkey N V1 1-512, V4 513-768, IT 769-1024; monkey F V1 1-512, IT 513-832, V4 833-1024.
Images are THINGS images, loaded with ``leut.data.things_images`` from ``data.things_images_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from leut.data.errors import DataFormatError, MissingDatasetError
from leut.data.matlab_files import read_mat
from leut.data.responses import ResponseData, split_half_reliability
from leut.data.things_images import raw_images_01

__all__ = ["CHANNEL_MAP", "MONKEYS", "load_tvsd", "tvsd_files", "things_names"]

MONKEYS = ("monkeyF", "monkeyN")
REGIONS = ("V1", "V4", "IT")
CHANNEL_MAP = {  # 0-based [start, stop) electrode ranges
  "monkeyN": {"V1": (0, 512), "V4": (512, 768), "IT": (768, 1024)},
  "monkeyF": {"V1": (0, 512), "IT": (512, 832), "V4": (832, 1024)},
}
N_ELECTRODES = 1024
_MUA = "THINGS_normMUA.mat"
_IMGS = Path("_logs") / "things_imgs.mat"


def tvsd_files(folder: os.PathLike | str, monkeys=MONKEYS) -> dict[str, tuple[Path, Path]]:
  """monkey -> (normMUA file, things_imgs file); a monkey without its own log uses the other's (same order).

  Raises:
    MissingDatasetError: naming the files expected.
  """
  folder = Path(folder)
  out, logs = {}, [folder / m / _IMGS for m in monkeys if (folder / m / _IMGS).is_file()]
  for m in monkeys:
    mua = folder / m / _MUA
    if not mua.is_file():
      raise MissingDatasetError(
        f"TVSD file {mua} not found: download {m}/{_MUA} (and {m}/{_IMGS.as_posix()}) from "
        f"https://gin.g-node.org/paolo_papale/TVSD (or `leut fetch tvsd`), keeping the folder layout, and point "
        f"`data.brain_dir` to the folder that holds {m}/.",
        mua,
      )
    own = folder / m / _IMGS
    if not own.is_file() and not logs:
      raise MissingDatasetError(f"TVSD image log {own} not found (needed to name the stimuli)", own)
    out[m] = (mua, own if own.is_file() else logs[0])
  return out


def things_names(paths) -> list[str]:
  """THINGS file names from ``things_path`` entries (``aardvark\\aardvark_01b.jpg`` -> ``aardvark_01b.jpg``)."""
  return [str(p).replace("\\", "/").rsplit("/", 1)[-1] for p in np.asarray(paths, dtype=object).ravel()]


def _image_log(path: Path) -> dict[str, tuple[list[str], list[str]]]:
  raw = read_mat(path, ["train_imgs", "test_imgs"])
  out = {}
  for split in ("train", "test"):
    s = raw[f"{split}_imgs"]
    if not isinstance(s, dict) or "things_path" not in s or "class" not in s:
      raise DataFormatError(path, f"{split}_imgs is not a struct with fields 'class' and 'things_path'")
    names = things_names(s["things_path"])
    classes = [str(c) for c in np.asarray(s["class"], dtype=object).ravel()]
    if len(names) != len(classes):
      raise DataFormatError(path, f"{split}_imgs has {len(names)} things_path but {len(classes)} class entries")
    out[split] = (names, classes)
  return out


def _as_2d(path, name, x, n_rows):
  x = np.asarray(x, np.float64)
  if x.ndim == 1:
    x = x[:, None]
  if x.shape[0] != n_rows:
    raise DataFormatError(path, f"{name} has shape {x.shape}; expected {n_rows} electrodes in the first axis")
  return x


def load_tvsd(
  folder: os.PathLike | str,
  things_images_dir: os.PathLike | str | None = None,
  *,
  stimuli: str = "test",
  regions: tuple[str, ...] = REGIONS,
  monkeys: tuple[str, ...] = MONKEYS,
  n_splits: int = 10,
  seed: int = 0,
) -> ResponseData:
  """Normalised MUA per electrode, with regions as ``roi`` and monkeys as ``subject``.

  Args:
    folder: the release folder holding ``monkeyF/`` and ``monkeyN/`` (``data.brain_dir``).
    things_images_dir: THINGS ``object_images`` (or its parent), for ``ResponseData.load_images_01``.
    stimuli: ``"test"`` (the 100 test images, mean of 30 repetitions: the RSA default), ``"train"`` (22,248
      images, one presentation each) or ``"all"`` (train then test, with ``split_S`` marking them, for encoding
      models fitted on train and scored on test).
    regions, monkeys: subsets.
    n_splits, seed: random split-halves of the 30 test repetitions for ``reliability``.

  Returns:
    ResponseData whose neuroid table also has ``reliab`` (the release's mean reliability, which Brain-Score
    thresholds at 0.3) and ``oracle``.

  Raises:
    MissingDatasetError, DataFormatError: naming the file and the problem (shapes that disagree with the image log,
      electrode counts other than 1024, different image orders between monkeys).
  """
  if stimuli not in ("test", "train", "all"):
    raise ValueError(f"stimuli must be 'test', 'train' or 'all', got {stimuli!r}")
  files = tvsd_files(folder, monkeys)
  logs = {m: _image_log(imgs) for m, (_, imgs) in files.items()}
  ref_monkey = monkeys[0]
  for m in monkeys[1:]:
    if logs[m] != logs[ref_monkey]:
      raise DataFormatError(files[m][1], f"image order differs from {files[ref_monkey][1]}")
  log = logs[ref_monkey]
  splits = ("train", "test") if stimuli == "all" else (stimuli,)
  names = [n for sp in splits for n in log[sp][0]]
  concepts = [c for sp in splits for c in log[sp][1]]
  split_S = np.array([sp for sp in splits for _ in log[sp][0]]) if stimuli == "all" else None

  blocks, tables = [], []
  for m in monkeys:
    path = files[m][0]
    want = [f"{sp}_MUA" for sp in splits] + ["test_MUA_reps", "reliab", "oracle"]
    raw = read_mat(path, want)
    parts = []
    for sp in splits:
      x = _as_2d(path, f"{sp}_MUA", raw[f"{sp}_MUA"], N_ELECTRODES)
      if x.shape[1] != len(log[sp][0]):
        raise DataFormatError(path, f"{sp}_MUA has {x.shape[1]} stimuli but the image log lists {len(log[sp][0])}")
      parts.append(x)
    mua_ExS = np.concatenate(parts, axis=1)
    reps = np.asarray(raw["test_MUA_reps"], np.float64)
    if reps.ndim != 3 or reps.shape[:2] != (N_ELECTRODES, len(log["test"][0])):
      raise DataFormatError(path, f"test_MUA_reps has shape {reps.shape}; expected (1024, n_test, n_reps)")
    rng = np.random.default_rng(seed)
    halves = [rng.permutation(reps.shape[2]) for _ in range(n_splits)]
    half = reps.shape[2] // 2
    a = np.stack([np.nanmean(reps[:, :, h[:half]], axis=2).T for h in halves])
    b = np.stack([np.nanmean(reps[:, :, h[half:]], axis=2).T for h in halves])
    reliability = split_half_reliability(a, b)
    reliab = _as_2d(path, "reliab", raw["reliab"], N_ELECTRODES).mean(axis=1)
    oracle = _as_2d(path, "oracle", raw["oracle"], N_ELECTRODES)[:, 0]
    for region in regions:
      lo, hi = CHANNEL_MAP[m][region]
      blocks.append(mua_ExS[lo:hi].T)
      tables.append(
        pd.DataFrame(
          {
            "roi": region,
            "subject": m,
            "neuroid_id": [f"{m}_{e + 1}" for e in range(lo, hi)],
            "reliability": reliability[lo:hi],
            "reliab": reliab[lo:hi],
            "oracle": oracle[lo:hi],
          }
        )
      )
  table = pd.concat(tables, ignore_index=True)
  order = np.lexsort((table["subject"].map(monkeys.index), table["roi"].map(regions.index)))
  responses = np.concatenate(blocks, axis=1)[:, order].astype(np.float32)
  loader = None
  if things_images_dir is not None:
    images_dir = things_images_dir

    def loader(stim, px, upsampled=False):
      return raw_images_01(images_dir, stim, px=px, upsampled=upsampled)

  return ResponseData(
    dataset="tvsd",
    stimuli=tuple(names),
    concepts=tuple(concepts),
    responses_SxN=responses,
    neuroids=table.iloc[order].reset_index(drop=True),
    split_S=split_S,
    load_images_01=loader,
  )
