"""Numerical precision of the statistics: every matrix product in leut.rsa runs at full float32, on every backend.

On GPUs a float32 matrix product defaults to TF32 (inputs rounded to a 10-bit mantissa) and on TPUs to bfloat16
passes (7-bit mantissa) unless the product asks for `jax.lax.Precision.HIGHEST`; `jax_default_matmul_precision`
changes that default for every product that does not ask. Rounding the inputs of a sign-flip null to TF32 moves the
identity assignment's T below the observed mean (p = 0 where every seed agrees), and a rounded Gram matrix or rank
product moves ρ in the fourth digit.

Where reduced precision is never allowed: statistics. Every `dot`, `einsum`, `matmul` and `@` in `leut.rsa` and in
the score kernels of `leut.evaluate` passes `precision=HIGHEST` (this module's `HIGHEST`), and nothing there calls a
linear-algebra routine (`jnp.linalg`), whose internal products a flag could lower. Element-wise products and
reductions (`jnp.sum(a * b)`, `jnp.mean`) are not matrix products and are never lowered.
`tests/rsa/test_precision.py` runs every statistics kernel under an emulation of TF32 and bfloat16 input rounding
(the CPU ignores the flag) and checks that ρ and every p-value are unchanged, while a default-precision product is not.

Where reduced precision may be allowed: training (the network's forward and backward passes), and only where it is
measured to be harmless for the question asked. leut leaves the backend default there and does not set
`jax_default_matmul_precision` itself. TF32 training does change the numbers (`benchmarks/README.md`, "Measured on
an NVIDIA H200"); whether it changes the alignment results is not measured, so on a GPU or TPU train with
`JAX_DEFAULT_MATMUL_PRECISION=highest` to rule the question out.
"""

from __future__ import annotations

import jax

HIGHEST = jax.lax.Precision.HIGHEST
