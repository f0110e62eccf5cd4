"""A procedural image world shared by the synthetic CIFAR-10 and the synthetic THINGS images.

Every image is a *scene*: one foreground shape from one of ten shape families (the
class) placed on a class-independent background texture. Scenes are parameters in
continuous image coordinates ([0, 1]², x to the right, y down), so the same scene
can be rendered at 32 px (CIFAR-like) or 128/224 px (THINGS-like).

Per image the position, scale, rotation and foreground colour are random, and the
background is an oriented luminance grating of random orientation, spatial
frequency, phase and contrast on a random colour. The grating is a low-level
nuisance: a classifier must learn shape, while a Gabor-like (V1) model is driven
mostly by the grating and by the shape's edges.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["CLASS_NAMES", "Scenes", "sample_scenes", "render", "render_silhouettes", "shape_masks"]

CLASS_NAMES = ("disc", "square", "triangle", "ring", "cross", "bars", "star", "ellipse", "checker", "crescent")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class Scenes(NamedTuple):
  """Parameters of N scenes; every field has N as its leading axis."""

  label_N: np.ndarray  # int32 class index into CLASS_NAMES
  center_Nx2: np.ndarray  # shape centre (x, y) in image units
  scale_N: np.ndarray  # shape radius as a fraction of the image side
  angle_N: np.ndarray  # shape rotation, radians
  fg_rgb_Nx3: np.ndarray  # foreground colour in [0, 1]
  bg_rgb_Nx3: np.ndarray  # mean background colour in [0, 1]
  grating_angle_N: np.ndarray  # grating orientation, radians
  grating_freq_N: np.ndarray  # grating spatial frequency, cycles per image
  grating_phase_N: np.ndarray  # radians
  grating_contrast_N: np.ndarray  # relative luminance modulation in [0, 1)

  def take(self, idx) -> Scenes:
    """Returns the scenes at ``idx`` (any NumPy index)."""
    return Scenes(*(np.asarray(f)[idx] for f in self))


def sample_scenes(rng: np.random.Generator, labels_N) -> Scenes:
  """Draws random scenes for the given class labels (colour, pose and background all random)."""
  labels_N = np.asarray(labels_N, np.int32)
  n = labels_N.shape[0]
  bg = rng.uniform(0.1, 0.9, (n, 3)).astype(np.float32)
  fg = rng.uniform(0.05, 0.95, (n, 3)).astype(np.float32)
  # Keep the shape visible: at least 0.25 luminance difference from the background.
  dl = (fg - bg) @ _LUMA
  side = np.where(bg @ _LUMA > 0.5, -1.0, 1.0).astype(np.float32)
  push = np.where(np.abs(dl) < 0.25, side * (0.25 - np.abs(dl)) + side * 0.1, 0.0)
  fg = np.clip(fg + push[:, None], 0.0, 1.0).astype(np.float32)
  f32 = lambda a: np.asarray(a, np.float32)
  return Scenes(
    label_N=labels_N,
    center_Nx2=f32(rng.uniform(0.38, 0.62, (n, 2))),
    scale_N=f32(rng.uniform(0.3, 0.42, n)),
    angle_N=f32(rng.uniform(-0.6, 0.6, n)),
    fg_rgb_Nx3=fg,
    bg_rgb_Nx3=bg,
    grating_angle_N=f32(rng.uniform(0, np.pi, n)),
    grating_freq_N=f32(rng.uniform(1.5, 6.0, n)),
    grating_phase_N=f32(rng.uniform(0, 2 * np.pi, n)),
    grating_contrast_N=f32(rng.uniform(0.05, 0.4, n)),
  )


def shape_masks(label_N: np.ndarray, x_NxP: np.ndarray, y_NxP: np.ndarray) -> np.ndarray:
  """Binary masks (N, P) of each scene's shape at local coordinates (radius ~1, centred)."""
  mask = np.zeros(x_NxP.shape, bool)
  for c in np.unique(label_N):
    sel = label_N == c
    x, y = x_NxP[sel], y_NxP[sel]
    r2 = x * x + y * y
    name = CLASS_NAMES[c]
    if name == "disc":
      m = r2 < 0.8**2
    elif name == "square":
      m = np.maximum(np.abs(x), np.abs(y)) < 0.7
    elif name == "triangle":
      m = np.ones(x.shape, bool)
      for k in range(3):
        a = np.pi / 2 + k * 2 * np.pi / 3
        m &= x * np.cos(a) + y * np.sin(a) < 0.48
    elif name == "ring":
      m = (r2 > 0.55**2) & (r2 < 0.9**2)
    elif name == "cross":
      ax, ay = np.abs(x), np.abs(y)
      m = ((ax < 0.28) & (ay < 0.9)) | ((ay < 0.28) & (ax < 0.9))
    elif name == "bars":
      box = (np.abs(x) < 0.85) & (np.abs(y) < 0.85)
      m = box & (np.floor((y + 0.85) / 0.34).astype(np.int32) % 2 == 0)
    elif name == "star":
      phi = np.arctan2(y, x)
      tri = np.abs(((5 * phi / (2 * np.pi)) % 1.0) - 0.5) * 2
      m = np.sqrt(r2) < 0.35 + 0.6 * tri
    elif name == "ellipse":
      m = (x / 0.95) ** 2 + (y / 0.45) ** 2 < 1.0
    elif name == "checker":
      box = (np.abs(x) < 0.8) & (np.abs(y) < 0.8)
      cell = np.floor((x + 0.8) / 0.4).astype(np.int32) + np.floor((y + 0.8) / 0.4).astype(np.int32)
      m = box & (cell % 2 == 0)
    elif name == "crescent":
      m = (r2 < 0.85**2) & ((x - 0.4) ** 2 + y * y > 0.65**2)
    else:  # pragma: no cover
      raise AssertionError(name)
    mask[sel] = m
  return mask


def _coverage(scenes: Scenes, px: int, ss: int, *, canonical: bool) -> np.ndarray:
  """Anti-aliased shape coverage (N, px, px) by ss×ss supersampling."""
  n = scenes.label_N.shape[0]
  g = (np.arange(px * ss, dtype=np.float32) + 0.5) / (px * ss)
  gx, gy = np.meshgrid(g, g)  # gx varies along width
  gx, gy = gx.reshape(1, -1), gy.reshape(1, -1)
  if canonical:  # centred, fixed size, keep rotation: a position/scale-invariant silhouette
    cx = cy = np.full((n, 1), 0.5, np.float32)
    s = np.full((n, 1), 0.45, np.float32)
  else:
    cx, cy = scenes.center_Nx2[:, :1], scenes.center_Nx2[:, 1:]
    s = scenes.scale_N[:, None]
  dx, dy = (gx - cx) / s, (gy - cy) / s
  c, si = np.cos(scenes.angle_N)[:, None], np.sin(scenes.angle_N)[:, None]
  xl, yl = c * dx + si * dy, -si * dx + c * dy
  m = shape_masks(scenes.label_N, xl, yl).astype(np.float32)
  return m.reshape(n, px, ss, px, ss).mean(axis=(2, 4))


def _supersampling(px: int) -> int:
  return max(1, int(np.ceil(96 / px)))


def render_silhouettes(scenes: Scenes, px: int, *, canonical: bool = True) -> np.ndarray:
  """Shape coverage maps (N, px, px) in [0, 1], without colour or texture.

  With ``canonical=True`` each shape is centred at a fixed size (rotation kept), which
  makes the silhouette independent of position and scale as well.
  """
  return _coverage(scenes, px, _supersampling(px), canonical=canonical)


def render(scenes: Scenes, px: int, *, noise_sd: float = 0.02, seed: int = 0, chunk: int = 256) -> np.ndarray:
  """Renders scenes as float32 RGB images (N, px, px, 3) in [0, 1].

  Example:
    >>> s = sample_scenes(np.random.default_rng(0), [0, 1])
    >>> render(s, 32).shape
    (2, 32, 32, 3)
  """
  n = scenes.label_N.shape[0]
  out = np.empty((n, px, px, 3), np.float32)
  rng = np.random.default_rng(seed)
  g = (np.arange(px, dtype=np.float32) + 0.5) / px
  gx, gy = np.meshgrid(g, g)
  for lo in range(0, n, chunk):
    sc = scenes.take(slice(lo, lo + chunk))
    cov = _coverage(sc, px, _supersampling(px), canonical=False)[..., None]
    ga = sc.grating_angle_N[:, None, None]
    proj = gx * np.cos(ga) + gy * np.sin(ga)
    wave = np.sin(2 * np.pi * sc.grating_freq_N[:, None, None] * proj + sc.grating_phase_N[:, None, None])
    bg = sc.bg_rgb_Nx3[:, None, None, :] * (1.0 + sc.grating_contrast_N[:, None, None, None] * wave[..., None])
    img = cov * sc.fg_rgb_Nx3[:, None, None, :] + (1.0 - cov) * bg
    if noise_sd:
      img = img + rng.normal(0.0, noise_sd, img.shape).astype(np.float32)
    out[lo : lo + chunk] = np.clip(img, 0.0, 1.0)
  return out
