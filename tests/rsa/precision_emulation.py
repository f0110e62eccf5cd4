"""Test-only emulation of accelerator matmul precision on the CPU, which ignores `jax_default_matmul_precision`.

`reduced_matmul_precision(mode)` sets the flag and wraps the binding of `dot_general` (the primitive behind every
`jnp.dot`, `einsum`, `matmul` and `@`): a product whose precision is not HIGHEST gets its floating-point inputs
rounded to the mode's mantissa before the multiply, as the hardware does (TF32 on GPUs: 10 bits; bfloat16 passes on
TPUs: 7 bits); HIGHEST products are untouched. The precision of every product traced inside is recorded.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
from jax._src.lax import lax as _lax

MANTISSA_BITS = {"bfloat16": 7, "tensorfloat32": 10}
FULL = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)


def _round(x, mantissa_bits):
  if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
    return x
  return jax.lax.reduce_precision(x, exponent_bits=8, mantissa_bits=mantissa_bits)


@contextlib.contextmanager
def reduced_matmul_precision(mode: str):
  """Within the block, products below HIGHEST see inputs rounded as on a GPU/TPU; yields the list of the precision
  of every `dot_general` traced in the block. Jitted code compiled outside the block is traced again inside it: the
  matmul-precision flag is part of every jit cache key (the test of this emulation checks that)."""
  bits = MANTISSA_BITS[mode]
  seen = []
  prim = _lax.dot_general_p
  original = prim.bind

  def bind(lhs, rhs, **params):
    precision = params.get("precision")
    seen.append(precision)
    if precision != FULL:
      lhs, rhs = _round(lhs, bits), _round(rhs, bits)
    return original(lhs, rhs, **params)

  prim.bind = bind
  try:
    with jax.default_matmul_precision(mode):
      yield seen
  finally:
    del prim.bind  # back to the class's method
