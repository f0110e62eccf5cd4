"""Multi-host start-up: `jax.distributed.initialize()` switched on by `LEUT_JAX_INIT=1` (big_vision's `BV_JAX_INIT`).

    LEUT_JAX_INIT=1 python -m leut run CONFIG --workdir DIR   # on every host (SLURM: srun; TPU VM: --worker=all)

With no arguments, `jax.distributed.initialize()` detects SLURM, Open MPI and Cloud TPU by itself. Anywhere else (or
to override) set `LEUT_COORDINATOR=host:port`, `LEUT_NUM_PROCESSES` and `LEUT_PROCESS_ID`; `LEUT_LOCAL_DEVICES`
(comma-separated ids) restricts the devices this process uses. Every process then runs the same program: seeds are
sharded over the global device mesh (`leut.train.sharding`), Orbax writes each checkpoint once from all processes,
and only process 0 writes files that are not arrays (digests, metrics, tables, the workdir lock and the completion
marker).
"""

from __future__ import annotations

import os

import jax

ENV_FLAG = "LEUT_JAX_INIT"
_done = False


def enabled() -> bool:
  return os.environ.get(ENV_FLAG, "") not in ("", "0", "false", "False")


def maybe_initialize() -> bool:
  """Call `jax.distributed.initialize()` once if `LEUT_JAX_INIT=1`; returns whether this is a multi-process run.

  Must run before anything touches a JAX device (the CLI calls it first).
  """
  global _done
  if enabled() and not _done:
    kwargs = {}
    if os.environ.get("LEUT_COORDINATOR"):
      kwargs["coordinator_address"] = os.environ["LEUT_COORDINATOR"]
    if os.environ.get("LEUT_NUM_PROCESSES"):
      kwargs["num_processes"] = int(os.environ["LEUT_NUM_PROCESSES"])
    if os.environ.get("LEUT_PROCESS_ID"):
      kwargs["process_id"] = int(os.environ["LEUT_PROCESS_ID"])
    if os.environ.get("LEUT_LOCAL_DEVICES"):
      kwargs["local_device_ids"] = [int(d) for d in os.environ["LEUT_LOCAL_DEVICES"].split(",")]
    jax.distributed.initialize(**kwargs)
    _done = True
  return jax.process_count() > 1


def describe() -> str:
  """One line naming this process and the devices it joined, e.g. `leut: process 1 of 2, 2 of 4 devices (cpu)`."""
  return (
    f"leut: process {jax.process_index()} of {jax.process_count()}, {jax.local_device_count()} of "
    f"{jax.device_count()} devices ({jax.default_backend()})"
  )


def is_primary() -> bool:
  """True on the one process that writes non-array files (process 0)."""
  return jax.process_index() == 0


def on_primary(fn) -> None:
  """Run `fn` on process 0 only; if it raises a `LeutError` there, raise on every process (none waits forever).

  For checks with a side effect that one process must make for all, such as taking the workdir lock.
  """
  from leut.errors import LeutError, WorkdirError

  failure = None
  if is_primary():
    try:
      fn()
    except LeutError as err:
      failure = err
  if jax.process_count() > 1:
    import numpy as np
    from jax.experimental import multihost_utils

    failed = bool(multihost_utils.broadcast_one_to_all(np.int32(failure is not None)))
    if failed and failure is None:
      raise WorkdirError("process 0 stopped with an error (see its output); this process stops too")
  if failure is not None:
    raise failure


def barrier(name: str) -> None:
  """Wait until every process reaches this point (no-op in a single-process run)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
