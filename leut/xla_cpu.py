"""XLA:CPU compiler options that leut's kernels are measured to run faster with.

jax 0.10's XLA:CPU hands matrix products *and* element-wise / reduction fusions to the YNNPACK library. For the
gather + cumulative-sum + dot-product loops of the stimulus bootstrap, keeping YNNPACK to matrix products and
leaving element-wise work and reductions to XLA's own emitters is ~1.35x faster per resample (CPU time, measured
side by side in `benchmarks/rsa_engine.py`). The option only exists in recent jaxlib releases, so it is probed once
and dropped where the installed XLA does not know it; other backends ignore it.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_DOT_ONLY_LIBRARY_FUSION = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}


@functools.cache
def dot_only_library_fusion() -> dict[str, str]:
  """`compiler_options` for `jax.jit` that keep XLA:CPU's library fusions to matrix products ({} if unsupported)."""
  try:
    jax.jit(lambda x: x + 1, compiler_options=_DOT_ONLY_LIBRARY_FUSION)(jnp.zeros(()))
  except Exception:  # noqa: BLE001 - an XLA without this option rejects it with a backend-specific error
    return {}
  return dict(_DOT_ONLY_LIBRARY_FUSION)
