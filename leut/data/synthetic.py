"""Writers for small synthetic datasets in the *real* on-disk formats.

``write_cifar10`` writes an official-format CIFAR-10 archive folder and
``write_things_fmri`` a THINGS-fMRI release in the Figshare table format (plus the
stimulus images), both from the procedural image world (``procedural.py``). The
fMRI responses are simulated from known feature models (``simulated_brain.py``),
so tests and reports can check that the pipeline recovers the ground truth.
``ensure_default`` writes the embedded default dataset once. Nothing downloads.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from PIL import Image

from leut.data import procedural
from leut.data.cifar import BIN_DIR, PY_DIR
from leut.data.procedural import CLASS_NAMES, Scenes
from leut.data.py2pickle import dumps_py2
from leut.data.response_h5 import write_response_h5
from leut.data.simulated_brain import TRUTH_FILE, roi_features

__all__ = [
  "write_cifar10",
  "ThingsWorld",
  "things_world",
  "write_things_fmri",
  "write_unused_concepts",
  "DefaultData",
  "ensure_default",
  "DEFAULT_PARAMS",
]


def _cifar_images(n: int, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray]:
  labels = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int32)
  imgs = procedural.render(procedural.sample_scenes(rng, labels), 32, seed=seed)
  return np.round(imgs * 255).astype(np.uint8), labels


def write_cifar10(
  root: os.PathLike | str, *, n_train: int = 5000, n_test: int = 1000, seed: int = 0, fmt: str = "python"
) -> Path:
  """Writes a synthetic CIFAR-10 archive folder in the official format.

  Args:
    root: parent folder; created if needed.
    n_train: training images, split over ``data_batch_1..5``.
    n_test: test images in ``test_batch``.
    seed: seed of the image world.
    fmt: ``"python"`` (``cifar-10-batches-py``, Python-2 pickles) or ``"binary"``
      (``cifar-10-batches-bin``, 1 label byte + 3072 pixel bytes per record).

  Returns:
    The archive folder (``root/cifar-10-batches-py`` or ``root/cifar-10-batches-bin``).
  """
  if fmt not in ("python", "binary"):
    raise ValueError(f"fmt must be 'python' or 'binary', got {fmt!r}")
  rng = np.random.default_rng(seed)
  train_x, train_y = _cifar_images(n_train, rng, seed)
  test_x, test_y = _cifar_images(n_test, rng, seed + 1)
  to_rows = lambda x: x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # R, G, B planes, row-major
  out = Path(root) / (PY_DIR if fmt == "python" else BIN_DIR)
  out.mkdir(parents=True, exist_ok=True)
  batches = [
    (f"data_batch_{i + 1}", f"training batch {i + 1} of 5", train_x, train_y, idx)
    for i, idx in enumerate(np.array_split(np.arange(n_train), 5))
  ]
  batches.append(("test_batch", "testing batch 1 of 1", test_x, test_y, np.arange(n_test)))
  for name, label, x, y, idx in batches:
    rows, ys = to_rows(x[idx]), y[idx]
    if fmt == "python":
      files = [f"{CLASS_NAMES[c]}_s_{int(i):06d}.png".encode() for c, i in zip(ys, idx)]
      batch = {b"batch_label": label.encode(), b"labels": [int(c) for c in ys], b"data": rows, b"filenames": files}
      (out / name).write_bytes(dumps_py2(batch))
    else:
      (out / f"{name}.bin").write_bytes(np.concatenate([ys[:, None].astype(np.uint8), rows], 1).tobytes())
  if fmt == "python":
    meta = {
      b"num_cases_per_batch": max(len(b[4]) for b in batches[:5]),
      b"label_names": [c.encode() for c in CLASS_NAMES],
      b"num_vis": 3072,
    }
    (out / "batches.meta").write_bytes(dumps_py2(meta))
  else:
    (out / "batches.meta.txt").write_text("\n".join(CLASS_NAMES) + "\n\n")
  return out


class ThingsWorld(NamedTuple):
  """The unique stimuli of a synthetic THINGS release (train images first, then test)."""

  concepts: tuple[str, ...]  # C concept names, e.g. "disc07"
  concept_class_C: np.ndarray  # class index of each concept
  stimuli: tuple[str, ...]  # N file names, e.g. "disc07_01s.jpg"
  concept_N: np.ndarray  # concept index of each stimulus
  is_test_N: np.ndarray  # bool
  scenes: Scenes  # N scenes


def things_world(
  *, n_concepts: int = 120, images_per_concept: int = 3, n_test_images: int = 12, seed: int = 0
) -> ThingsWorld:
  """Deterministic concepts, stimulus names and scenes of a synthetic THINGS release.

  Concept ``k`` belongs to class ``k % 10`` and is named ``<class><index:02d>``. Its
  images share a concept colour and size (jittered per image); pose and background
  vary freely. Test images are extra images ``<concept>_<ipc+1:02d>s.jpg`` of evenly
  spaced concepts, so they sort after the concept's training images.
  """
  rng = np.random.default_rng([seed, 1])
  n_cls = len(CLASS_NAMES)
  cls_C = np.arange(n_concepts) % n_cls
  concepts = tuple(f"{CLASS_NAMES[c]}{k // n_cls:02d}" for k, c in enumerate(cls_C))
  test_C = np.unique(np.linspace(0, n_concepts - 1, n_test_images).round().astype(int))
  concept_N = np.concatenate([np.repeat(np.arange(n_concepts), images_per_concept), test_C])
  number_N = np.concatenate(
    [np.tile(np.arange(1, images_per_concept + 1), n_concepts), np.full(test_C.size, images_per_concept + 1)]
  )
  stimuli = tuple(f"{concepts[c]}_{k:02d}s.jpg" for c, k in zip(concept_N, number_N))
  scenes = procedural.sample_scenes(rng, cls_C[concept_N])
  colour_C = rng.uniform(0.05, 0.95, (n_concepts, 3)).astype(np.float32)
  size_C = rng.uniform(0.2, 0.32, n_concepts).astype(np.float32)
  fg = np.clip(colour_C[concept_N] + rng.normal(0, 0.06, (concept_N.size, 3)), 0, 1)
  scenes = scenes._replace(
    fg_rgb_Nx3=fg.astype(np.float32),
    scale_N=(size_C[concept_N] * rng.uniform(0.9, 1.1, concept_N.size)).astype(np.float32),
  )
  is_test = np.arange(concept_N.size) >= n_concepts * images_per_concept
  return ThingsWorld(concepts, cls_C, stimuli, concept_N, is_test, scenes)


def _schedule(
  world: ThingsWorld, rng, *, images_per_concept: int, test_reps: int, n_sessions: int, runs_per_session: int
) -> pd.DataFrame:
  """Trial table (one row per trial, acquisition order) of one subject.

  Training image k of every concept is shown once, in session ``k % n_sessions + 1``,
  so all ``_01s`` images lie in session 1, spread over its runs (PROTOCOL §6.3).
  Each test image is shown ``test_reps`` times, in different runs.
  """
  n_runs = n_sessions * runs_per_session
  train = np.flatnonzero(~world.is_test_N)
  number = np.arange(train.size) % images_per_concept
  run_of = np.empty(world.is_test_N.size, np.int64)  # global run index per train stimulus
  for s in range(n_sessions):
    idx = rng.permutation(train[number % n_sessions == s])
    run_of[idx] = s * runs_per_session + np.arange(idx.size) % runs_per_session
  trials = [(i, run_of[i]) for i in train]
  for i in np.flatnonzero(world.is_test_N):
    start = rng.integers(n_runs)
    trials += [(i, (start + r * max(1, n_runs // test_reps)) % n_runs) for r in range(test_reps)]
  stim_T = np.array([i for i, _ in trials])
  run_T = np.array([r for _, r in trials])
  order = np.lexsort((rng.random(run_T.size), run_T))
  stim_T, run_T = stim_T[order], run_T[order]
  trial_id = np.concatenate([np.arange(np.sum(run_T == r)) for r in range(n_runs)])
  return pd.DataFrame(
    {
      "trial_type": np.where(world.is_test_N[stim_T], "test", "train"),
      "session": run_T // runs_per_session + 1,
      "run": run_T % runs_per_session + 1,
      "subject_id": 0,
      "trial_id": trial_id,
      "stimulus": [world.stimuli[i] for i in stim_T],
      "concept": [world.concepts[world.concept_N[i]] for i in stim_T],
    }
  )


_ROI_COLUMNS = ("V1", "V2", "V3", "hV4", "VO1", "LO1 (prf)", "lEBA", "lFFA", "rFFA", "lLOC", "rLOC", "IT")
_SIGNAL = {"V1": "V1", "V2": "V2", "V3": "V3", "hV4": "hV4", "lLOC": "LOC", "rLOC": "LOC", "IT": "IT", "lFFA": "lFFA"}


def _voxel_table(rng, subject: int, voxels_per_roi: int) -> tuple[pd.DataFrame, list[list[str]]]:
  """Voxel metadata and, per voxel, the simulated ROIs whose signal it carries."""
  n = voxels_per_roi
  groups = (
    [["V1"]] * n
    + [["V2"]] * n
    + [["V3"]] * n
    + [["hV4"]] * n
    + [["lLOC"]] * (n - n // 5)
    + [["lLOC", "IT"]] * (n // 5)
    + [["rLOC"]] * n
    + [["IT"]] * (n - n // 5)
    + [["lFFA"]] * (n // 3)
    + [["VO1"]] * (n // 3)
    + [[]] * n
  )
  groups = [groups[i] for i in rng.permutation(len(groups))]
  v = len(groups)
  table = pd.DataFrame(
    {
      "voxel_id": np.sort(rng.choice(100_000, v, replace=False)),
      "subject_id": subject,
      "voxel_x": rng.integers(0, 72, v),
      "voxel_y": rng.integers(0, 91, v),
      "voxel_z": rng.integers(0, 76, v),
      "nc_singletrial": rng.uniform(0, 40, v).round(3),
      "nc_testset": rng.uniform(0, 80, v).round(3),
      "splithalf_uncorrected": rng.uniform(-0.1, 0.6, v).round(4),
      "splithalf_corrected": rng.uniform(-0.1, 0.8, v).round(4),
      "prf-eccentricity": np.where(rng.random(v) < 0.3, np.nan, rng.uniform(0, 10, v).round(3)),
      "prf-polarangle": rng.uniform(0, 360, v).round(2),
      "prf-rsquared": rng.uniform(0, 1, v).round(3),
      "prf-size": rng.uniform(0.1, 5, v).round(3),
    }
  )
  for col in _ROI_COLUMNS:
    table[col] = [int(col in g) for g in groups]
  table["glasser-V1"] = table["V1"]
  table["glasser-MT"] = (rng.random(v) < 0.05).astype(int)
  return table, [[_SIGNAL[r] for r in g if r in _SIGNAL] for g in groups]


def _betas(
  rng, features: dict, signal_rois: list[list[str]], trials: pd.DataFrame, stim_index: dict, noise_sd: float
) -> np.ndarray:
  """Single-trial betas (V, T): voxel gain x (signal + run effect + noise) + offset."""
  n_s = next(iter(features.values())).shape[0]
  signal_SxV = np.zeros((n_s, len(signal_rois)))
  for roi, f_SxK in features.items():
    cols = [j for j, g in enumerate(signal_rois) if roi in g]
    if cols:
      w = rng.normal(size=(f_SxK.shape[1], len(cols)))
      signal_SxV[:, cols] += f_SxK @ w / np.array([len(signal_rois[j]) for j in cols])
  stim_T = np.array([stim_index[s] for s in trials["stimulus"]])
  run_T = ((trials["session"] - 1) * 1000 + trials["run"]).to_numpy()
  runs, run_T = np.unique(run_T, return_inverse=True)
  run_RxV = rng.normal(0, 0.35, (runs.size, len(signal_rois)))
  resp_TxV = signal_SxV[stim_T] + run_RxV[run_T] + rng.normal(0, noise_sd, (stim_T.size, len(signal_rois)))
  gain, offset = rng.uniform(0.5, 2.0, len(signal_rois)), rng.normal(0, 2.0, len(signal_rois))
  return (resp_TxV * gain + offset).T.astype(np.float32)


def write_things_fmri(
  root: os.PathLike | str,
  *,
  n_concepts: int = 120,
  images_per_concept: int = 3,
  n_test_images: int = 12,
  test_reps: int = 4,
  image_px: int = 128,
  n_subjects: int = 3,
  voxels_per_roi: int = 150,
  n_sessions: int = 2,
  runs_per_session: int = 5,
  noise_sd=(1.0, 1.2, 2.0),
  n_unused_concepts: int = 0,
  images_per_unused_concept: int = 4,
  seed: int = 0,
) -> Path:
  """Writes a synthetic THINGS-fMRI release (Figshare table format) with its images.

  Layout under ``root``: ``betas_csv/sub-XX_{ResponseData.h5, VoxelMetadata.csv,
  StimulusMetadata.csv}``, ``object_images/<concept>/<stimulus>.jpg`` and
  ``simulation_truth.npz`` (noise-free ROI features, see ``simulated_brain``).
  sub-01 and sub-02 share a trial order, later subjects get their own; each subject
  has its own voxel mixing, and ``noise_sd[j]`` sets its noise (sub-03 noisiest).
  ``n_unused_concepts`` more concepts get ``images_per_unused_concept`` images in
  ``object_images/`` but no trial, as the THINGS concepts outside the fMRI experiment
  (`write_unused_concepts`); the release's own files do not depend on them.

  Returns:
    ``root`` as a Path.
  """
  root = Path(root)
  world = things_world(
    n_concepts=n_concepts, images_per_concept=images_per_concept, n_test_images=n_test_images, seed=seed
  )
  images = procedural.render(world.scenes, image_px, seed=seed)
  for name, c, img in zip(world.stimuli, world.concept_N, images):
    folder = root / "object_images" / world.concepts[c]
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(img * 255).astype(np.uint8)).save(folder / name, quality=95)
  features = roi_features(images, world.scenes, world.concept_N, seed=seed)
  np.savez_compressed(
    root / TRUTH_FILE,
    stimuli=np.array(world.stimuli),
    classes=world.concept_class_C[world.concept_N],
    **{f"features_{k}": v.astype(np.float32) for k, v in features.items()},
  )
  stim_index = {s: i for i, s in enumerate(world.stimuli)}
  out = root / "betas_csv"
  out.mkdir(parents=True, exist_ok=True)
  for j in range(n_subjects):
    sub = f"sub-{j + 1:02d}"
    rng = np.random.default_rng([seed, 100 + j])
    schedule_rng = np.random.default_rng([seed, 7, max(j, 1)])  # sub-01 and sub-02 share
    trials = _schedule(
      world,
      schedule_rng,
      images_per_concept=images_per_concept,
      test_reps=test_reps,
      n_sessions=n_sessions,
      runs_per_session=runs_per_session,
    )
    trials["subject_id"] = j + 1
    voxels, signal_rois = _voxel_table(rng, j + 1, voxels_per_roi)
    sd = noise_sd[j] if j < len(noise_sd) else noise_sd[-1]
    betas_VxT = _betas(rng, features, signal_rois, trials, stim_index, sd)
    trials.to_csv(out / f"{sub}_StimulusMetadata.csv", index=False)
    voxels.to_csv(out / f"{sub}_VoxelMetadata.csv", index=False)
    write_response_h5(out / f"{sub}_ResponseData.h5", voxels["voxel_id"], range(len(trials)), [betas_VxT])
  write_unused_concepts(root, n_concepts, n_unused_concepts, images_per_unused_concept, image_px=image_px, seed=seed)
  return root


def write_unused_concepts(
  root: os.PathLike | str, first: int, n_concepts: int, images_per_concept: int, *, image_px: int, seed: int = 0
) -> list[str]:
  """Writes images of THINGS concepts that no trial shows: concepts ``first .. first + n_concepts - 1`` (named and
  classed like `things_world`'s, so they continue its list), each with ``images_per_concept`` images
  ``object_images/<concept>/<concept>_<k:02d>s.jpg``, from their own random stream (the release's other files do
  not change). They stand for the 1,134 THINGS concepts outside THINGS-fMRI, which paper C calibrates BatchNorm on
  (`leut.bn_calibration`). Returns the file names written.
  """
  if n_concepts <= 0:
    return []
  n_cls = len(CLASS_NAMES)
  index_C = np.arange(first, first + n_concepts)
  concepts = [f"{CLASS_NAMES[k % n_cls]}{k // n_cls:02d}" for k in index_C]
  concept_N = np.repeat(np.arange(n_concepts), images_per_concept)
  scenes = procedural.sample_scenes(np.random.default_rng([seed, 3]), (index_C % n_cls)[concept_N])
  images = procedural.render(scenes, image_px, seed=seed + 3)
  names = []
  for i, (c, img) in enumerate(zip(concept_N, images)):
    folder = Path(root) / "object_images" / concepts[c]
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{concepts[c]}_{i % images_per_concept + 1:02d}s.jpg"
    Image.fromarray(np.round(img * 255).astype(np.uint8)).save(folder / name, quality=95)
    names.append(name)
  return names


class DefaultData(NamedTuple):
  """Folders of the embedded default dataset (values for the ``data.*`` config fields)."""

  cifar_dir: Path
  things_fmri_dir: Path
  things_images_dir: Path


DEFAULT_PARAMS = dict(
  version=3,  # 2: larger, less rotated shapes so a CNN learns them within the quickstart's steps; 3: + unused concepts
  cifar=dict(n_train=5000, n_test=1000, seed=0),
  things=dict(
    n_concepts=120,
    images_per_concept=3,
    n_test_images=12,
    test_reps=4,
    image_px=128,
    n_subjects=3,
    voxels_per_roi=150,
    n_sessions=2,
    runs_per_session=5,
    n_unused_concepts=40,  # THINGS concepts without fMRI trials (BatchNorm calibration source, leut.bn_calibration)
    images_per_unused_concept=4,
    seed=0,
  ),
)
_MARKER = "leut_default.json"


def ensure_default(root: os.PathLike | str) -> DefaultData:
  """Writes the embedded synthetic default dataset under ``root`` once (idempotent).

  A marker file records the generator parameters; when it is missing or differs
  (an older generator, or an interrupted write) the dataset is regenerated. A file
  lock makes concurrent first calls safe.
  """
  root = Path(root)
  data = DefaultData(root / "cifar", root / "things_fmri", root / "things_fmri" / "object_images")
  marker = root / _MARKER
  want = json.dumps(DEFAULT_PARAMS, sort_keys=True)
  if marker.is_file() and marker.read_text() == want:
    return data
  root.mkdir(parents=True, exist_ok=True)
  with open(root / ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent first uses: one writes, the others wait
    if marker.is_file() and marker.read_text() == want:
      return data
    marker.unlink(missing_ok=True)
    for d in (data.cifar_dir, data.things_fmri_dir):
      if d.exists():
        shutil.rmtree(d)
    write_cifar10(data.cifar_dir, **DEFAULT_PARAMS["cifar"])
    write_things_fmri(data.things_fmri_dir, **DEFAULT_PARAMS["things"])
    tmp = root / (_MARKER + ".tmp")
    tmp.write_text(want)
    tmp.replace(marker)
  return data
