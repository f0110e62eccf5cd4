"""Synthetic macaque releases in their real on-disk formats, from the simulated ground truth of ``simulated_brain``.

* ``write_majajhong2015``: a Brain-Score assembly (``assy_dicarlo_MajajHong2015_public.nc``: presentation x neuroid
  x time_bin, one 70-170 ms bin) and the ``dicarlo.hvm-public`` stimulus set (CSV + ZIP of greyscale object images
  with ``object_name``, ``category_name`` and ``variation``). Two animals; V4 sites follow the hV4 model (V2 energy
  and shape), IT sites the IT model (category). One animal misses some repetitions (NaN, as in the real assembly).
* ``write_freemanziemba2013``: ``assy_movshon_FreemanZiemba2013_public.nc`` with spike counts in 1-ms bins
  (neuroid x time_bin x presentation, 0-300 ms) and the ``movshon.FreemanZiemba2013.aperture-public`` stimulus set
  of "texture" images and their phase-scrambled "noise" versions (same amplitude spectrum). V1 cells follow the
  Gabor-energy model, V2 cells the V2 model (energies plus cross-orientation products). The stimulus drives spikes
  between 50 and 200 ms; a stimulus-unrelated late component after 200 ms penalises the wrong window.
* ``write_tvsd``: ``monkeyF/`` and ``monkeyN/`` with ``THINGS_normMUA.mat`` (MATLAB 7.3) and
  ``_logs/things_imgs.mat``, on the synthetic THINGS images of the default fMRI release and from its
  ``simulation_truth.npz`` (V1, hV4 and IT features), 1024 electrodes per monkey mapped as in the real release.

Each release also gets a ``simulation_truth.npz`` (stimulus names and the features per area), so
``simulated_brain.ground_truth_rdms`` gives the noise-free RDMs. ``ensure_macaque`` writes a release under the
synthetic-default folder the first time it is asked for, so the quickstart, which never asks, costs nothing more.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from leut.data import procedural
from leut.data.brainscore_stimuli import write_stimulus_set
from leut.data.matlab_files import write_mat_v73
from leut.data.netcdf import write_labelled_array
from leut.data.procedural import CLASS_NAMES
from leut.data.simulated_brain import TRUTH_FILE, roi_features
from leut.data.synthetic import DEFAULT_PARAMS, ensure_default, things_world
from leut.data.tvsd import CHANNEL_MAP, N_ELECTRODES

__all__ = [
  "MACAQUE_PARAMS",
  "MACAQUE_RELEASES",
  "ensure_macaque",
  "write_freemanziemba2013",
  "write_majajhong2015",
  "write_tvsd",
]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_FZ_STIMULI = "movshon.FreemanZiemba2013.aperture-public"
TEXTURE_FAMILIES = (327, 336, 393, 402, 13, 18, 23, 30, 38, 48, 52, 56, 60, 71, 99)  # the release's family ids


def _ids(images_Nx: np.ndarray) -> list[str]:
  """Brain-Score names stimuli by the SHA-1 of their file; here, of the 8-bit pixels."""
  return [hashlib.sha1(np.round(img * 255).astype(np.uint8).tobytes()).hexdigest() for img in images_Nx]


def _project(features_SxK: np.ndarray, n: int, rng) -> np.ndarray:
  """Responses of n random linear read-outs of standardised features (signal variance about 1 each)."""
  return features_SxK @ rng.normal(size=(features_SxK.shape[1], n))


def _truth(root: Path, stimuli, features: dict) -> None:
  np.savez_compressed(
    root / TRUTH_FILE, stimuli=np.array(stimuli), **{f"features_{k}": v.astype(np.float32) for k, v in features.items()}
  )


def write_majajhong2015(
  root: os.PathLike | str,
  *,
  n_objects: int = 20,
  images_per_object: int = 8,
  image_px: int = 96,
  reps: int = 8,
  sites: dict[str, int] | None = None,
  animals: Sequence[str] = ("Chabo", "Tito"),
  noise_sd: Sequence[float] = (2.0, 2.6),
  seed: int = 0,
) -> Path:
  """Writes a synthetic MajajHong2015 public assembly and its stimulus set (see the module docstring).

  Args:
    root: release folder (created).
    n_objects: objects (``object_name``), ``n_objects // 10`` per category of ``procedural.CLASS_NAMES``.
    images_per_object: images per object (a quarter at variation 0, the rest at variation 3).
    image_px: image side.
    reps: repetitions per image (the second animal misses one for a sixth of the images).
    sites: recording sites per region and animal, default ``{"V4": 24, "IT": 40}``.
    animals: animal names (subjects).
    noise_sd: per-animal trial noise, in units of the signal SD.
    seed: seed of everything.
  """
  root = Path(root)
  root.mkdir(parents=True, exist_ok=True)
  sites = dict(sites or {"V4": 24, "IT": 40})
  rng = np.random.default_rng([seed, 2015])
  world = things_world(n_concepts=n_objects, images_per_concept=images_per_object, n_test_images=0, seed=seed + 11)
  gray = procedural.render(world.scenes, image_px, seed=seed) @ _LUMA
  images = np.repeat(gray[..., None], 3, axis=-1)
  features = roi_features(images, world.scenes, world.concept_N, seed=seed)
  ids = _ids(images)
  number = np.arange(len(ids)) % images_per_object
  table = pd.DataFrame(
    {
      "stimulus_id": ids,
      "object_name": [world.concepts[c] for c in world.concept_N],
      "category_name": [CLASS_NAMES[world.concept_class_C[c]] for c in world.concept_N],
      "variation": np.where(number < max(1, images_per_object // 4), 0, 3),
    }
  )
  write_stimulus_set(root, "dicarlo.hvm-public", table, images)
  _truth(root, ids, {"V1": features["V1"], "V2": features["V2"], "hV4": features["hV4"], "IT": features["IT"]})

  model = {"V4": features["hV4"], "IT": features["IT"]}
  s = len(ids)
  stim_P = np.repeat(np.arange(s), reps)
  rep_P = np.tile(np.arange(reps), s)
  perm = rng.permutation(stim_P.size)
  stim_P, rep_P = stim_P[perm], rep_P[perm]
  blocks, region, animal, neuroid_id = [], [], [], []
  for a, name in enumerate(animals):
    missing = (rng.random(s) < 1 / 6) & (a > 0)  # this animal saw these images one time fewer
    for r, (reg, n) in enumerate(sites.items()):
      signal_SxN = _project(model[reg], n, rng)
      signal_SxN[:, : max(1, n // 10)] = 0.0  # a few unresponsive sites: reliability near 0
      rates = 10.0 + 4.0 * signal_SxN[stim_P] + rng.normal(0, 4.0 * noise_sd[a], (stim_P.size, n))
      rates[missing[stim_P] & (rep_P == reps - 1)] = np.nan
      blocks.append(rates)
      region += [reg] * n
      animal += [name] * n
      arr = "M" if reg == "V4" else "AP"[r % 2]
      neuroid_id += [f"{name}_L_{arr}_{k // 10}_{k % 10}" for k in range(n)]
  values = np.concatenate(blocks, axis=1)[:, :, None].astype(np.float32)
  write_labelled_array(
    root / "assy_dicarlo_MajajHong2015_public.nc",
    values,
    ("presentation", "neuroid", "time_bin"),
    {
      "stimulus_id": ("presentation", np.array(ids)[stim_P]),
      "repetition": ("presentation", rep_P),
      "neuroid_id": ("neuroid", neuroid_id),
      "animal": ("neuroid", animal),
      "region": ("neuroid", region),
      "time_bin_start": ("time_bin", [70]),
      "time_bin_end": ("time_bin", [170]),
    },
    {"identifier": "dicarlo.MajajHong2015.public", "stimulus_set_identifier": "dicarlo.hvm-public"},
  )
  return root


def _phase_scrambled(images_NxHxWx3: np.ndarray, rng) -> np.ndarray:
  """Same amplitude spectrum per channel, random phases (one random phase field per image, shared by channels)."""
  n, h, w, _ = images_NxHxWx3.shape
  spec = np.fft.fft2(images_NxHxWx3, axes=(1, 2))
  phase = np.angle(np.fft.fft2(rng.random((n, h, w))))[..., None]
  out = np.real(np.fft.ifft2(np.abs(spec) * np.exp(1j * phase), axes=(1, 2)))
  mean = images_NxHxWx3.mean(axis=(1, 2), keepdims=True)
  out = out - out.mean(axis=(1, 2), keepdims=True) + mean
  return np.clip(out, 0, 1).astype(np.float32)


def write_freemanziemba2013(
  root: os.PathLike | str,
  *,
  n_families: int = 4,
  n_samples: int = 6,
  image_px: int = 96,
  reps: int = 8,
  cells: int = 24,
  n_bins: int = 300,
  seed: int = 0,
) -> Path:
  """Writes a synthetic FreemanZiemba2013 public assembly and its aperture stimulus set (module docstring).

  Args:
    root: release folder (created).
    n_families: texture families (ids from the release's family list).
    n_samples: samples per family and type (``texture`` and its phase-scrambled ``noise``).
    image_px: image side.
    reps: repetitions per image.
    cells: cells per region (V1, V2).
    n_bins: 1-ms time bins from stimulus onset.
    seed: seed of everything.
  """
  root = Path(root)
  root.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng([seed, 2013])
  fam = np.repeat(np.arange(n_families), n_samples)
  scenes = procedural.sample_scenes(rng, fam % len(CLASS_NAMES))
  textures = procedural.render(scenes, image_px, seed=seed)
  noise = _phase_scrambled(textures, rng)
  images = np.concatenate([noise, textures])
  both = scenes.take(np.r_[np.arange(fam.size), np.arange(fam.size)])
  features = roi_features(images, both, np.r_[fam, fam], seed=seed)
  ids = _ids(images)
  ttype = ["noise"] * fam.size + ["texture"] * fam.size
  families = [TEXTURE_FAMILIES[f] for f in np.r_[fam, fam]]
  samples = np.tile(np.arange(1, n_samples + 1), 2 * n_families)
  table = pd.DataFrame(
    {
      "image_id": ids,
      "texture_family": families,
      "texture_type": ttype,
      "sample": samples,
      "resolution": "320x320",
      "image_file_name": [
        f"{'tex' if t == 'texture' else 'noise'}-320x320-im{f}-smp{k}.png" for t, f, k in zip(ttype, families, samples)
      ],
    }
  )
  write_stimulus_set(root, _FZ_STIMULI, table, images, id_column="image_id")  # the legacy column name
  _truth(root, ids, {"V1": features["V1"], "V2": features["V2"]})

  s = len(ids)
  stim_P = np.tile(np.arange(s), reps)
  rep_P = np.repeat(np.arange(reps), s)
  t_ms = np.arange(n_bins)
  window = ((t_ms >= 50) & (t_ms < 200)).astype(np.float64)
  late = (t_ms >= 200).astype(np.float64)
  rates = []
  for reg in ("V1", "V2"):
    drive_SxN = np.maximum(2.0, 40.0 + 14.0 * _project(features[reg], cells, rng))  # spikes/s
    other_SxN = np.maximum(2.0, 30.0 + 14.0 * rng.normal(size=(s, cells)))  # late, unrelated to the stimulus
    rates.append(5.0 + drive_SxN[:, :, None] * window + other_SxN[:, :, None] * late)
  rate_SxNxT = np.concatenate(rates, axis=1) / 1000.0
  spikes_PxNxT = rng.poisson(rate_SxNxT[stim_P]).astype(np.float32)
  write_labelled_array(
    root / "assy_movshon_FreemanZiemba2013_public.nc",
    np.transpose(spikes_PxNxT, (1, 2, 0)),
    ("neuroid", "time_bin", "presentation"),
    {
      "neuroid_id": ("neuroid", np.arange(1, 2 * cells + 1)),
      "region": ("neuroid", ["V1"] * cells + ["V2"] * cells),
      "time_bin_start": ("time_bin", t_ms),
      "time_bin_end": ("time_bin", t_ms + 1),
      "image_id": ("presentation", np.array(ids)[stim_P]),
      "repetition": ("presentation", rep_P),
    },
    {"identifier": "movshon.FreemanZiemba2013.public", "stimulus_set_identifier": _FZ_STIMULI},
    variable="__xarray_dataarray_variable__",
  )
  return root


def _split_half_r(reps_ExSxR: np.ndarray, rng, n: int) -> np.ndarray:
  out = np.empty((reps_ExSxR.shape[0], n))
  for k in range(n):
    p = rng.permutation(reps_ExSxR.shape[2])
    a = reps_ExSxR[:, :, p[: p.size // 2]].mean(2)
    b = reps_ExSxR[:, :, p[p.size // 2 :]].mean(2)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    with np.errstate(invalid="ignore"):
      out[:, k] = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
  return out


def write_tvsd(
  root: os.PathLike | str,
  things_fmri_dir: os.PathLike | str,
  test_stimuli: Sequence[str],
  *,
  test_reps: int = 30,
  noise_sd: Sequence[float] = (1.2, 1.6),
  seed: int = 0,
) -> Path:
  """Writes a synthetic TVSD release on the synthetic THINGS images of ``things_fmri_dir`` (module docstring).

  Args:
    root: release folder (created).
    things_fmri_dir: a synthetic THINGS-fMRI release (its ``simulation_truth.npz`` and ``object_images/``).
    test_stimuli: which of its stimuli form the test set (the rest are train images).
    test_reps: repetitions of each test image.
    noise_sd: per-monkey single-presentation noise, in units of the signal SD (monkeyF, monkeyN).
    seed: seed of everything.
  """
  root = Path(root)
  root.mkdir(parents=True, exist_ok=True)
  with np.load(Path(things_fmri_dir) / TRUTH_FILE) as z:
    names = [str(s) for s in z["stimuli"]]
    features = {"V1": z["features_V1"], "V4": z["features_hV4"], "IT": z["features_IT"]}
  is_test = np.isin(names, list(test_stimuli))
  order = {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}
  concept = [n.rsplit("_", 1)[0] for n in names]
  log = {
    f"{sp}_imgs": {
      "class": [concept[i] for i in idx],
      "things_path": [f"{concept[i]}\\{names[i]}" for i in idx],
      "local_path": [f"C:\\stimuli\\THINGS\\{concept[i]}\\{names[i]}" for i in idx],
    }
    for sp, idx in order.items()
  }
  _truth(root, names, {"V1": features["V1"], "hV4": features["V4"], "IT": features["IT"]})
  for mi, monkey in enumerate(("monkeyF", "monkeyN")):
    rng = np.random.default_rng([seed, 25, mi])
    signal_ExS = np.zeros((N_ELECTRODES, len(names)))
    for region, (lo, hi) in CHANNEL_MAP[monkey].items():
      signal_ExS[lo:hi] = _project(features[region].astype(np.float64), hi - lo, rng).T
    signal_ExS[rng.random(N_ELECTRODES) < 0.3] = 0.0  # electrodes without a visual response
    sd = noise_sd[mi]
    train = signal_ExS[:, order["train"]] + rng.normal(0, sd, (N_ELECTRODES, order["train"].size))
    reps = signal_ExS[:, order["test"], None] + rng.normal(0, sd, (N_ELECTRODES, order["test"].size, test_reps))
    reliab = _split_half_r(reps, rng, 10)
    others = (reps.sum(2, keepdims=True) - reps) / (test_reps - 1)
    a, b = reps - reps.mean(1, keepdims=True), others - others.mean(1, keepdims=True)
    with np.errstate(invalid="ignore"):
      oracle = np.nanmean((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1)), axis=1)
    snr = np.abs(signal_ExS).mean(1, keepdims=True) / sd + rng.uniform(0, 0.2, (N_ELECTRODES, 2))
    f32 = lambda x: np.asarray(x, np.float32)
    write_mat_v73(
      root / monkey / "THINGS_normMUA.mat",
      {
        "SNR": f32(snr),
        "SNR_max": f32(snr.max(1, keepdims=True)),
        "lats": f32(rng.uniform(40, 90, (N_ELECTRODES, 2))),
        "oracle": f32(oracle[:, None]),
        "reliab": f32(reliab),
        "tb": np.arange(-100, 200, dtype=np.float64)[None, :],
        "test_MUA": f32(reps.mean(2)),
        "test_MUA_reps": f32(reps),
        "train_MUA": f32(train),
      },
    )
    write_mat_v73(root / monkey / "_logs" / "things_imgs.mat", log)
  return root


MACAQUE_RELEASES = ("majajhong2015", "freemanziemba2013", "tvsd")
MACAQUE_PARAMS = dict(
  version=1,
  majajhong2015=dict(n_objects=20, images_per_object=8, image_px=96, reps=8, seed=0),
  freemanziemba2013=dict(n_families=4, n_samples=6, image_px=96, reps=8, cells=24, seed=0),
  tvsd=dict(test_reps=30, seed=0),
)
_MARKER = "leut_macaque.json"


def ensure_macaque(synthetic_dir: os.PathLike | str, name: str) -> Path:
  """The synthetic release ``name`` under ``synthetic_dir/name``, written on first use (idempotent, locked).

  TVSD needs the synthetic THINGS images, so it first ensures the default dataset (``synthetic.ensure_default``).
  """
  if name not in MACAQUE_RELEASES:
    raise ValueError(f"no synthetic release {name!r}; choose one of {MACAQUE_RELEASES}")
  synthetic_dir = Path(synthetic_dir)
  root = synthetic_dir / name
  want = json.dumps({"version": MACAQUE_PARAMS["version"], name: MACAQUE_PARAMS[name]}, sort_keys=True)
  marker = root / _MARKER
  if marker.is_file() and marker.read_text() == want:
    return root
  things = ensure_default(synthetic_dir).things_fmri_dir if name == "tvsd" else None
  synthetic_dir.mkdir(parents=True, exist_ok=True)
  with open(synthetic_dir / f".{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if marker.is_file() and marker.read_text() == want:
      return root
    if root.exists():
      shutil.rmtree(root)
    params = MACAQUE_PARAMS[name]
    if name == "majajhong2015":
      write_majajhong2015(root, **params)
    elif name == "freemanziemba2013":
      write_freemanziemba2013(root, **params)
    else:
      t = DEFAULT_PARAMS["things"]
      world = things_world(
        n_concepts=t["n_concepts"],
        images_per_concept=t["images_per_concept"],
        n_test_images=t["n_test_images"],
        seed=t["seed"],
      )
      test = [s for s, is_test in zip(world.stimuli, world.is_test_N) if is_test]
      write_tvsd(root, things, test, **params)
    tmp = root / (_MARKER + ".tmp")
    tmp.write_text(want)
    tmp.replace(marker)
  return root
