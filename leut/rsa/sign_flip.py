"""Exact paired sign-flip test over seeds (PROTOCOL §3.7, paper B / C v3), exhaustive or Monte Carlo."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from leut.rsa.precision import HIGHEST

EXACT_MAX_N = 20


# One compiled program per shape and setting (called op by op, each call would compile its chunk loop anew).
@functools.partial(jax.jit, static_argnames=("alternative", "n_mc", "exact_max_n", "chunk"))
def sign_flip_test(
  diffs_N: jax.Array,
  alternative: str = "greater",
  *,
  key: jax.Array | None = None,
  n_mc: int = 100_000,
  exact_max_n: int = EXACT_MAX_N,
  chunk: int = 4096,
) -> jax.Array:
  """Paired sign-flip test of mean(diffs) along the last axis (N seeds), vmappable over leading axes.

  Null statistic T(s) = mean_i s_i d_i over sign vectors s in {-1, +1}^N; observed T = mean_i d_i.
  Exact (N <= `exact_max_n`, i.e. up to 2^20 assignments): p = #{s: T(s) >= T} / 2^N ("greater"),
  #{T(s) <= T} / 2^N ("less"), #{|T(s)| >= |T|} / 2^N ("two-sided"); the identity assignment is included, so with 5/5
  positive seeds p = 1/32 one-sided and 2/32 two-sided (the published test was two-sided, floored at 0.0625).
  Monte Carlo (larger N, needs `key`): p = (1 + #extreme) / (1 + n_mc) with independent uniform sign vectors.
  Ties are counted with a relative tolerance of 1e-6 on |T| so that float rounding cannot drop the identity; the null
  is a full-float32 product (`leut.rsa.precision`), so TF32/bfloat16 rounding cannot drop it either.
  A row with a NaN or ±inf difference has p = NaN (jittable: no error); drop missing seeds before the call.
  Reference: Fisher (1935) randomisation test for paired data; Good (2005), Permutation, Parametric and Bootstrap
  Tests of Hypotheses, ch. 3.
  """
  d = jnp.asarray(diffs_N, jnp.float32)
  N = d.shape[-1]
  lead = d.shape[:-1]
  d_KxN = d.reshape(-1, N)
  obs_K = jnp.mean(d_KxN, axis=-1)
  tol_K = 1e-6 * jnp.maximum(jnp.max(jnp.abs(d_KxN), axis=-1), 1e-30)
  if N <= exact_max_n:
    n_assign = 2**N
    n_chunks = -(-n_assign // chunk)
    bits = jnp.arange(N, dtype=jnp.uint32)

    def count(c):
      k = c * chunk + jnp.arange(chunk, dtype=jnp.uint32)
      valid = k < n_assign
      signs_CxN = 1.0 - 2.0 * ((k[:, None] >> bits[None, :]) & 1).astype(jnp.float32)
      null_KxC = jnp.matmul(d_KxN, signs_CxN.T, precision=HIGHEST) / N
      return _extreme(null_KxC, obs_K, tol_K, alternative, valid)

    counts = jax.lax.map(count, jnp.arange(n_chunks, dtype=jnp.uint32))
    p = jnp.sum(counts, axis=0) / n_assign
  else:
    if key is None:
      raise ValueError(f"N={N} > {exact_max_n}: Monte Carlo sign flips need a key")
    n_chunks = -(-n_mc // chunk)

    def count_mc(c):
      k = jax.random.fold_in(key, c)
      signs_CxN = jax.random.rademacher(k, (chunk, N), dtype=jnp.float32)
      valid = c * chunk + jnp.arange(chunk) < n_mc
      return _extreme(jnp.matmul(d_KxN, signs_CxN.T, precision=HIGHEST) / N, obs_K, tol_K, alternative, valid)

    counts = jax.lax.map(count_mc, jnp.arange(n_chunks))
    p = (1.0 + jnp.sum(counts, axis=0)) / (1.0 + n_mc)
  p = jnp.where(jnp.all(jnp.isfinite(d_KxN), axis=-1), p, jnp.nan)
  return p.reshape(lead)


def _extreme(null_KxC, obs_K, tol_K, alternative, valid_C):
  o = obs_K[:, None]
  t = tol_K[:, None]
  if alternative == "greater":
    ext = null_KxC >= o - t
  elif alternative == "less":
    ext = null_KxC <= o + t
  elif alternative == "two-sided":
    ext = jnp.abs(null_KxC) >= jnp.abs(o) - t
  else:
    raise ValueError(f"unknown alternative {alternative!r}")
  return jnp.sum(ext & valid_C[None, :], axis=-1)
