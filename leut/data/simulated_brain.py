"""Ground-truth feature models of the simulated THINGS-fMRI ROIs.

The synthetic THINGS-fMRI release (``synthetic.write_things_fmri``) is generated
from these models, so the representational geometry each ROI *should* show is known:

* ``V1``  — Gabor energy: quadrature Gabor filters (4 orientations x 3 spatial
  frequencies, in cycles per image), energy pooled on a 4x4 grid. Driven by the
  background grating and by shape edges; blind to category.
* ``V2``  — the same energies pooled on a coarser 2x2 grid, plus cross-orientation
  products (corner/curvature-like conjunctions), pooled 2x2.
* ``V3``  — a mixture: 70% V2 features, 30% LOC features.
* ``hV4`` — a mixture: 40% V2 features, 60% LOC features.
* ``LOC`` (``lLOC``, ``rLOC``) — shape: the silhouette centred and size-normalised
  (rotation kept) plus the pose-free silhouette of the shape family. Independent of
  colour, background texture, position and size.
* ``IT``  — category: a class embedding plus a weaker concept-level embedding.
* ``lFFA`` — a distractor ROI that encodes the foreground and background colours.

Each feature matrix is standardised (columns z-scored over the stimulus set, then
scaled by 1/sqrt(K)), so a random unit-weight voxel has signal variance about 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from leut.data.procedural import Scenes, render_silhouettes

__all__ = ["SIM_ROIS", "TRUTH_FILE", "gabor_energy", "roi_features", "correlation_rdm", "ground_truth_rdms"]

SIM_ROIS = ("V1", "V2", "V3", "hV4", "LOC", "IT", "lFFA")
TRUTH_FILE = "simulation_truth.npz"
_ALIASES = {"V4": "hV4", "lLOC": "LOC", "rLOC": "LOC"}
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _gabor_maps(gray_NxHxW: np.ndarray, n_orient: int, freqs: Sequence[float]) -> np.ndarray:
  """Energy maps (N, O, F, H, W) of complex Gabor filters applied with the FFT.

  A Gaussian bump on one side of the frequency plane is the transfer function of a
  complex (quadrature) Gabor; the modulus of its response is the energy.
  """
  n, h, w = gray_NxHxW.shape
  spec = np.fft.fft2(gray_NxHxW - gray_NxHxW.mean(axis=(1, 2), keepdims=True))
  fy = np.fft.fftfreq(h)[:, None] * h  # cycles per image
  fx = np.fft.fftfreq(w)[None, :] * w
  out = np.empty((n, n_orient, len(freqs), h, w), np.float32)
  for o in range(n_orient):
    th = np.pi * o / n_orient
    for k, f0 in enumerate(freqs):
      sigma = 0.4 * f0
      g = np.exp(-((fx - f0 * np.cos(th)) ** 2 + (fy - f0 * np.sin(th)) ** 2) / (2 * sigma**2))
      out[:, o, k] = np.abs(np.fft.ifft2(spec * g))
  return out


def _pool(maps_NxCxHxW: np.ndarray, grid: int) -> np.ndarray:
  n, c, h, w = maps_NxCxHxW.shape
  hh, ww = h // grid * grid, w // grid * grid
  m = maps_NxCxHxW[:, :, :hh, :ww].reshape(n, c, grid, hh // grid, grid, ww // grid)
  return m.mean(axis=(3, 5)).reshape(n, -1)


def gabor_energy(
  images_NxHxWx3: np.ndarray, *, n_orient: int = 4, freqs: Sequence[float] = (3.0, 6.0, 12.0), grid: int = 4
) -> np.ndarray:
  """V1-like Gabor-energy features (N, n_orient*len(freqs)*grid*grid) of RGB images in [0, 1].

  Frequencies are in cycles per image, so the features barely depend on resolution.
  """
  gray = np.asarray(images_NxHxWx3, np.float32) @ _LUMA
  maps = _gabor_maps(gray, n_orient, freqs)
  n, o, f, h, w = maps.shape
  return np.sqrt(_pool(maps.reshape(n, o * f, h, w), grid))


def _standardize(f_NxK: np.ndarray) -> np.ndarray:
  f = np.asarray(f_NxK, np.float64)
  sd = f.std(axis=0)
  f = (f[:, sd > 1e-9] - f.mean(axis=0)[sd > 1e-9]) / sd[sd > 1e-9]
  return f / np.sqrt(f.shape[1])


def _mix(a_NxK: np.ndarray, b_NxL: np.ndarray, weight_a: float) -> np.ndarray:
  return np.concatenate([np.sqrt(weight_a) * a_NxK, np.sqrt(1 - weight_a) * b_NxL], axis=1)


def roi_features(
  images_NxHxWx3: np.ndarray, scenes: Scenes, concept_N: np.ndarray, *, seed: int = 0
) -> dict[str, np.ndarray]:
  """Standardised ground-truth features per simulated ROI (see the module docstring).

  Args:
    images_NxHxWx3: the rendered stimuli, RGB in [0, 1].
    scenes: the scene parameters the images were rendered from.
    concept_N: integer concept id of each stimulus.
    seed: seed of the random class/concept embeddings.

  Returns:
    dict ROI name (``SIM_ROIS``) -> float64 array (N, K_roi).
  """
  rng = np.random.default_rng(seed)
  gray = np.asarray(images_NxHxWx3, np.float32) @ _LUMA
  maps = _gabor_maps(gray, 4, (3.0, 6.0, 12.0))
  n, o, f, h, w = maps.shape
  v1 = _standardize(np.sqrt(_pool(maps.reshape(n, o * f, h, w), 4)))
  cross = np.stack(
    [maps[:, i] * maps[:, (i + o // 2) % o] for i in range(o // 2)]
    + [maps[:, i] * maps[:, (i + 1) % o] for i in range(o)],
    axis=1,
  )
  v2 = _standardize(
    np.concatenate(
      [np.sqrt(_pool(maps.reshape(n, o * f, h, w), 2)), np.sqrt(_pool(cross.reshape(n, -1, h, w), 2))], axis=1
    )
  )
  sil = render_silhouettes(scenes, 16).reshape(n, -1)
  family = render_silhouettes(scenes._replace(angle_N=np.zeros_like(scenes.angle_N)), 16).reshape(n, -1)
  loc = _mix(_standardize(sil), _standardize(family), 0.5)
  class_emb = rng.normal(size=(int(scenes.label_N.max()) + 1, 16))
  concept_N = np.asarray(concept_N)
  concept_emb = rng.normal(size=(int(concept_N.max()) + 1, 16))
  it = _mix(_standardize(class_emb[scenes.label_N]), _standardize(concept_emb[concept_N]), 0.75)
  ffa = _standardize(np.concatenate([scenes.fg_rgb_Nx3, scenes.bg_rgb_Nx3], axis=1))
  return {"V1": v1, "V2": v2, "V3": _mix(v2, loc, 0.7), "hV4": _mix(v2, loc, 0.4), "LOC": loc, "IT": it, "lFFA": ffa}


def correlation_rdm(x_SxK: np.ndarray) -> np.ndarray:
  """Correlation-distance RDM (S, S), float64: 1 - Pearson r between rows, zero diagonal."""
  x = np.asarray(x_SxK, np.float64)
  x = x - x.mean(axis=1, keepdims=True)
  x = x / np.linalg.norm(x, axis=1, keepdims=True)
  rdm = 1.0 - x @ x.T
  np.fill_diagonal(rdm, 0.0)
  return rdm


def ground_truth_rdms(
  things_fmri_dir: os.PathLike | str,
  stimuli: Sequence[str],
  rois: Sequence[str] = ("V1", "V2", "V3", "V4", "LOC", "IT"),
) -> dict[str, np.ndarray]:
  """Noise-free RDMs of the simulated ROIs for ``stimuli`` of a synthetic release.

  Reads the ``simulation_truth.npz`` that ``write_things_fmri`` leaves next to
  ``betas_csv/`` (real releases have none). ROI names accept the loader's aliases
  (``V4`` -> ``hV4``, ``lLOC``/``rLOC`` -> ``LOC``).

  Returns:
    dict ROI name as requested -> float64 correlation-distance RDM (S, S).
  """
  path = Path(things_fmri_dir) / TRUTH_FILE
  with np.load(path) as z:
    names = [str(s) for s in z["stimuli"]]
    index = {s: i for i, s in enumerate(names)}
    rows = np.array([index[s] for s in stimuli])
    return {r: correlation_rdm(z[f"features_{_ALIASES.get(r, r)}"][rows]) for r in rois}
