"""XLA compiler options that leut's programs are measured to run, or compile, faster with.

jax 0.10's XLA:CPU hands matrix products, convolutions, element-wise and reduction fusions to the YNNPACK library.
Two programs run faster with less of that (each measured side by side, see `benchmarks/README.md`):

- the stimulus bootstrap (gathers, cumulative sums, dot products) with YNNPACK kept to matrix products: less CPU
  per resample (`dot_only_library_fusion`, `benchmarks/rsa_engine.py`);
- the CNN (training steps and feature extraction) with YNNPACK kept to matrix products and reductions, so that
  convolutions go to XLA's own convolution kernels: more backprop seed-steps/s, and a faster conv2/conv3 forward
  (`network_library_fusion`, `benchmarks/train_throughput.py`). Reductions stay
  with YNNPACK there: XLA's own reduce-window emitter made the BatchNorm statistics the slowest part of the step.
  Not every program keeps its convolutions out: in a 1-seed predictive-coding inference XLA put convolutions
  inside YNNPACK reduction fusions (with 2+ seeds the per-seed stacking kept them apart; `benchmarks/README.md`).

Programs that run once per rule, the random initialisations, are compiled at LLVM optimisation level 1
(`run_once_jit`): XLA's default level spends seconds optimising the threefry rounds of every random draw to save
microseconds of a program that runs once (`benchmarks/init_compile.py`), and the draws are bit-identical
(`tests/test_xla_cpu.py`).

The library-fusion option only exists in recent jaxlib releases, so each set is probed once and dropped where the
installed XLA does not know it; other backends ignore it. These are options of the compiler, not part of the traced
or lowered program: nothing here makes a program CPU-specific (`jax.export` of a `network_jit` function carries none
of them).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_OPTION = "xla_cpu_experimental_ynn_fusion_type"
_DOT = "LIBRARY_FUSION_TYPE_DOT"
_REDUCE = "LIBRARY_FUSION_TYPE_REDUCE"


@functools.cache
def _library_fusions(kinds: tuple[str, ...]) -> dict[str, str]:
  options = {_OPTION: ",".join(kinds)}
  try:
    jax.jit(lambda x: x + 1, compiler_options=options)(jnp.zeros(()))
  except Exception:  # noqa: BLE001 - an XLA without this option rejects it with a backend-specific error
    return {}
  return options


def dot_only_library_fusion() -> dict[str, str]:
  """`compiler_options` for `jax.jit` that keep XLA:CPU's library fusions to matrix products ({} if unsupported)."""
  return dict(_library_fusions((_DOT,)))


def network_library_fusion() -> dict[str, str]:
  """`compiler_options` for CNN programs: library fusions for matrix products and reductions only, so standalone
  convolutions go to XLA ({} if unsupported; a reduction fusion may still take in its producer convolution)."""
  return dict(_library_fusions((_DOT, _REDUCE)))


@functools.cache
def _accepted(option: str, value: str) -> dict[str, str]:
  options = {option: value}
  try:
    jax.jit(lambda x: x + 1, compiler_options=options)(jnp.zeros(()))
  except Exception:  # noqa: BLE001 - a backend or XLA version without this option rejects it
    return {}
  return options


def run_once_jit(fn, **jit_kwargs):
  """`jax.jit` for programs run once per rule (initialisations): compiled at LLVM optimisation level 1, several times
  faster to compile than the default level 3, with bit-identical random draws. Traced inside another transformation
  (`jax.eval_shape`, an outer `jit`), it is a plain `jax.jit`: compiler options belong to top-level programs only."""
  quick = jit_with(dict(_accepted("xla_backend_optimization_level", "1")), fn, **jit_kwargs)
  plain = jax.jit(fn, **jit_kwargs)

  @functools.wraps(fn)
  def call(*args, **kwargs):
    traced = any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs)))
    return (plain if traced else quick)(*args, **kwargs)

  return call


def jit_with(options: dict[str, str], fn, **jit_kwargs):
  """`jax.jit(fn, **jit_kwargs)` compiled with `options` (not passed when empty: older `jax.jit` lacks the argument)."""
  if options:
    jit_kwargs["compiler_options"] = options
  return jax.jit(fn, **jit_kwargs)


def network_jit(fn, **jit_kwargs):
  """`jax.jit` for CNN programs, with `network_library_fusion()` options where the installed XLA has them."""
  return jit_with(network_library_fusion(), fn, **jit_kwargs)
