"""Readouts: how a layer's activation maps become the stimulus × unit features its RDM is built from (`eval.readout`).

  mean     the published readout: each channel's spatial mean (N x H x W x C -> N x C; `models.pooled_features`).
           It discards the spatial layout that early visual areas are tuned to.
  flatten  the whole map, flattened (D = H·W·C) and reduced by a seeded Gaussian random projection to K dimensions,
           y = x R / √K with R_dk ~ N(0, 1) (Johnson & Lindenstrauss 1984; Achlioptas 2003): every pairwise distance
           is kept within a factor 1 ± ε with high probability once K = O(log S / ε²), so the RDM of the
           projection approximates the RDM of the full map. R is generated in blocks of `BLOCK` input dimensions
           from `fold_in(key, block)` on the device and never held whole (224 px × 32 channels × 4,096 dims would be
           6.6·10⁹ floats), so chunks of stimuli projected separately get the same projection.
  pca      the flattened map's first K principal components over the stimuli (Pearson 1901): the scores
           U_k Λ_k^{1/2} of the eigendecomposition of the centred Gram matrix G = X_c X_cᵀ (S x S, so D may be
           large), equal to X_c V_k of the SVD X_c = U Σ Vᵀ; each component's sign is fixed so that its
           largest-magnitude score is positive. In the evaluation (`leut.evaluate.map_features`) a map with more
           than `eval.readout_dims` dimensions is first randomly projected as for `flatten` (the stimuli arrive in
           chunks, and PCA needs them all), so X is then the projection.

All three are vmapped over seeds (a leading `N` axis).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from leut.rsa.precision import HIGHEST

READOUTS = ("mean", "flatten", "pca")
BLOCK = 4096  # input dimensions per generated block of the random projection


@partial(jax.jit, static_argnames=("dims",))
def random_projection(x_SxD, key, *, dims: int = 4096):
  """y = x R / √dims with R_dk ~ N(0, 1) drawn block by block from `key` (see module docstring); `S x dims`."""
  x = jnp.asarray(x_SxD, jnp.float32)
  S, D = x.shape
  n_blocks = -(-D // BLOCK)
  x = jnp.pad(x, ((0, 0), (0, n_blocks * BLOCK - D)))

  def add_block(b, acc_SxK):
    r_BxK = jax.random.normal(jax.random.fold_in(key, b), (BLOCK, dims), jnp.float32)
    # rows past D multiply zero padding, so the projection of the first D dims does not depend on the padding
    x_SxB = jax.lax.dynamic_slice_in_dim(x, b * BLOCK, BLOCK, axis=1)
    return acc_SxK + jnp.matmul(x_SxB, r_BxK, precision=HIGHEST)

  y = jax.lax.fori_loop(0, n_blocks, add_block, jnp.zeros((S, dims), jnp.float32))
  return y / jnp.sqrt(jnp.float32(dims))


@partial(jax.jit, static_argnames=("components",))
def pca_scores(x_SxD, *, components: int):
  """The first `components` principal-component scores of the S stimuli (see module docstring); `S x components`."""
  x = jnp.asarray(x_SxD, jnp.float32)
  xc = x - x.mean(axis=0, keepdims=True)
  gram_SxS = jnp.matmul(xc, xc.T, precision=HIGHEST)
  eigval, eigvec = jnp.linalg.eigh(gram_SxS)  # ascending
  eigval, eigvec = eigval[::-1][:components], eigvec[:, ::-1][:, :components]
  scores = eigvec * jnp.sqrt(jnp.clip(eigval, 0.0))[None, :]
  pick = jnp.argmax(jnp.abs(scores), axis=0)
  sign = jnp.sign(scores[pick, jnp.arange(scores.shape[1])])
  return scores * jnp.where(sign == 0, 1.0, sign)[None, :]


def readout(maps_NxSx___, how: str, *, key=None, dims: int = 4096, components: int = 100):
  """`N x S x U` features of N seeds' activations `N x S x ...` (maps `N x S x H x W x C` or vectors `N x S x U`).

  Vectors (fc layers) are returned as they are by every readout except `pca`.
  """
  x = jnp.asarray(maps_NxSx___)
  if how not in READOUTS:
    raise ValueError(f"eval.readout must be one of {READOUTS}, not {how!r}")
  if how == "mean":
    return x.mean(axis=(2, 3)) if x.ndim == 5 else x
  flat = x.reshape(x.shape[0], x.shape[1], -1)
  if how == "flatten":
    if x.ndim == 3 and flat.shape[-1] <= dims:
      return flat
    return jax.vmap(lambda f: random_projection(f, key, dims=dims))(flat)
  k = min(components, flat.shape[1] - 1, flat.shape[2])
  return jax.vmap(lambda f: pca_scores(f, components=k))(flat)
