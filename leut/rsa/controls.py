"""Low-level control RDMs from raw RGB images in [0, 1], `SxHxWx3` (PROTOCOL §3.10-3.11).

An image with a NaN/inf pixel has NaN distances to every other image in every control (as `rdm`); the others are
unaffected. A constant feature vector (e.g. a grey image's mean RGB) gets distance 1 by `rdm`'s convention.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from leut.rsa.precision import HIGHEST
from leut.rsa.rdm import rdm

REC709 = (0.2126, 0.7152, 0.0722)


def luminance(images_SxHxWx3: jax.Array) -> jax.Array:
  """Rec.709 luminance map `SxHxW`: 0.2126 R + 0.7152 G + 0.0722 B."""
  x = jnp.asarray(images_SxHxWx3, jnp.float32)
  return jnp.einsum("shwc,c->shw", x, jnp.asarray(REC709, jnp.float32), precision=HIGHEST)


def pixel_rdm(images_SxHxWx3: jax.Array) -> jax.Array:
  """PIXEL: correlation distance between flattened [0, 1] RGB images (no normalisation), `SxS`."""
  x = jnp.asarray(images_SxHxWx3, jnp.float32)
  return rdm(x.reshape(x.shape[0], -1), "correlation")


def luminance_rdm(images_SxHxWx3: jax.Array) -> jax.Array:
  """MEANLUM: d_ij = |l_i - l_j|, l = mean Rec.709 luminance of the image."""
  l_S = jnp.mean(luminance(images_SxHxWx3), axis=(1, 2))
  return jnp.abs(l_S[:, None] - l_S[None, :])


def mean_rgb_rdm(images_SxHxWx3: jax.Array) -> jax.Array:
  """MEANRGB: correlation distance between the 3-d mean-RGB vectors (a grey image has r := 0, distance 1)."""
  m_Sx3 = jnp.mean(jnp.asarray(images_SxHxWx3, jnp.float32), axis=(1, 2))
  return rdm(m_Sx3, "correlation")


def color_histogram(images_SxHxWx3: jax.Array, bins: int = 8) -> jax.Array:
  """Joint RGB histogram `Sx(bins^3)`, normalised to sum 1; channel bin = min(floor(v * bins), bins - 1).

  An image with a NaN/inf pixel has no histogram: its row is NaN (an integer bin index would hide it).
  """
  x = jnp.asarray(images_SxHxWx3, jnp.float32)
  b = jnp.clip(jnp.floor(x * bins), 0, bins - 1).astype(jnp.int32)
  idx_SxN = (b[..., 0] * bins * bins + b[..., 1] * bins + b[..., 2]).reshape(x.shape[0], -1)
  hist = jax.vmap(lambda i: jnp.zeros((bins**3,), jnp.float32).at[i].add(1.0))(idx_SxN)
  finite_Sx1 = jnp.all(jnp.isfinite(x.reshape(x.shape[0], -1)), axis=-1, keepdims=True)
  return jnp.where(finite_Sx1, hist / idx_SxN.shape[-1], jnp.nan)


def color_histogram_rdm(images_SxHxWx3: jax.Array, bins: int = 8) -> jax.Array:
  """COLORHIST: correlation distance between 8x8x8 joint RGB histograms."""
  return rdm(color_histogram(images_SxHxWx3, bins), "correlation")


def gabor_energy(
  images_SxHxWx3: jax.Array, *, n_orient: int = 4, freqs=(0.25, 0.125, 0.0625), grid: int = 4
) -> jax.Array:
  """Gabor energy features `Sx(n_orient * len(freqs) * grid^2)`.

  Quadrature (complex) Gabor filters are applied to the luminance map in the Fourier domain: a Gaussian bump centred
  at spatial frequency f (cycles/pixel) and orientation theta_k = k pi / n_orient, radial bandwidth sigma = f / 2
  (about one octave). Energy = |filtered|, i.e. sqrt(even^2 + odd^2), averaged over a grid x grid spatial tiling.
  The exact published filter parameters were not recoverable (PROTOCOL §3.11); these are documented defaults.
  """
  lum = luminance(images_SxHxWx3)
  S, H, W = lum.shape
  lum = lum - jnp.mean(lum, axis=(1, 2), keepdims=True)
  fy = np.fft.fftfreq(H)[:, None]
  fx = np.fft.fftfreq(W)[None, :]
  filters = []
  for f in freqs:
    for k in range(n_orient):
      th = np.pi * k / n_orient
      u, v = f * np.cos(th), f * np.sin(th)
      filters.append(np.exp(-((fx - u) ** 2 + (fy - v) ** 2) / (2 * (f / 2) ** 2)))
  g_FxHxW = jnp.asarray(np.stack(filters), jnp.complex64)
  spec_SxHxW = jnp.fft.fft2(lum.astype(jnp.complex64))
  energy = jnp.abs(jnp.fft.ifft2(spec_SxHxW[:, None] * g_FxHxW[None]))
  gh, gw = H // grid, W // grid
  e = energy[:, :, : gh * grid, : gw * grid].reshape(S, -1, grid, gh, grid, gw)
  return jnp.mean(e, axis=(3, 5)).reshape(S, -1)


def gabor_energy_rdm(images_SxHxWx3: jax.Array, **kw) -> jax.Array:
  """GABOR: correlation distance between Gabor energy features (4 orientations x 3 spatial frequencies)."""
  return rdm(gabor_energy(images_SxHxWx3, **kw), "correlation")
