"""Milestone checkpoints with Orbax: all seeds of one rule in one checkpoint, every milestone kept, each verified.

Layout: `WORKDIR/checkpoints/<rule>/<step>/` (Orbax) plus `WORKDIR/checkpoints/<rule>/digests.json`, a SHA-256 of
every leaf written after each save. A checkpoint that fails to restore or whose digest differs (a killed write, a
truncated or flipped file) is reported, moved to `<rule>/corrupt/<step>`, and the previous good one is used.

Multi-host: every process calls the same methods; Orbax writes each checkpoint once (each process its own shards of
the seed-sharded arrays), the digest is taken over the gathered arrays, and only process 0 writes or moves files
outside Orbax, with a barrier after. A restore lays the arrays out as its target says (`abstract_state` carries the
seed sharding of the current devices), so a run restarts on fewer hosts or devices than it was saved from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from leut import distributed


class CorruptCheckpointWarning(UserWarning):
  pass


def state_digest(state: Any) -> str:
  """SHA-256 over the bytes, dtypes and shapes of every leaf, in tree order (typed PRNG keys by their key data)."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      from jax.experimental import multihost_utils

      arr = np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
    else:
      arr = np.asarray(jax.device_get(leaf))
    h.update(jax.tree_util.keystr(path).encode())
    h.update(f"{arr.dtype}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
  return h.hexdigest()


class MilestoneCheckpoints:
  """Save and restore one rule's seed-stacked `TrainState` at milestone steps."""

  def __init__(self, directory: str | Path):
    self.directory = Path(directory).absolute()
    self.directory.mkdir(parents=True, exist_ok=True)
    options = ocp.CheckpointManagerOptions(max_to_keep=None, enable_async_checkpointing=False, create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)
    self._digest_file = self.directory / "digests.json"

  def _digests(self) -> dict[str, str]:
    if not self._digest_file.exists():
      return {}
    return json.loads(self._digest_file.read_text())

  def steps(self) -> list[int]:
    """Steps whose checkpoint finished writing (its digest was recorded), ascending."""
    self._manager.reload()  # another process or manager may have written since
    recorded = self._digests()
    return sorted(s for s in self._manager.all_steps() if str(s) in recorded)

  def _write_digests(self, digests: dict[str, str]) -> None:
    """Replace `digests.json` atomically, so a kill never leaves it half written."""
    tmp = self._digest_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(digests, indent=1, sort_keys=True))
    tmp.replace(self._digest_file)

  def save(self, step: int, state: Any) -> None:
    if step in self._manager.all_steps():
      self._manager.delete(step)  # an unverified leftover of a killed run
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()
    digest = state_digest(state)  # collective in a multi-process run: every process computes it
    if distributed.is_primary():
      digests = self._digests()
      digests[str(step)] = digest
      self._write_digests(digests)  # a step counts as saved only once this lands
    distributed.barrier(f"leut-digest-{self.directory}-{step}")

  def restore(self, step: int, abstract_state: Any) -> Any:
    """Restore `step` into the structure of `abstract_state`; raises `ValueError` if it is corrupt."""
    expected = self._digests().get(str(step))
    if expected is None:
      raise ValueError(f"checkpoint {self.directory / str(step)} has no recorded digest: its write never finished")
    try:
      state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as err:  # noqa: BLE001 - any failure to read means the files are damaged
      raise ValueError(f"checkpoint {self.directory / str(step)} cannot be read: {type(err).__name__}: {err}") from err
    if state_digest(state) != expected:
      raise ValueError(
        f"checkpoint {self.directory / str(step)} does not match the digest recorded when it was "
        "written (file damaged or changed)"
      )
    return state

  def _quarantine(self, step: int, reason: str) -> None:
    warnings.warn(
      f"{reason}; moving it to {self.directory / 'corrupt'} and falling back to the previous milestone",
      CorruptCheckpointWarning,
      stacklevel=3,
    )
    if distributed.is_primary():
      target = self.directory / "corrupt" / f"{step}"
      target.parent.mkdir(exist_ok=True)
      if target.exists():
        shutil.rmtree(target)
      src = self.directory / str(step)
      if src.exists():
        shutil.move(str(src), str(target))
      digests = self._digests()
      digests.pop(str(step), None)
      self._write_digests(digests)
    distributed.barrier(f"leut-quarantine-{self.directory}-{step}")
    self._manager.reload()

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any] | None:
    """The newest checkpoint that restores and verifies, quarantining any bad ones above it; None if none."""
    self._manager.reload()
    for step in sorted(set(self._manager.all_steps()), reverse=True):
      try:
        return step, self.restore(step, abstract_state)
      except ValueError as err:
        self._quarantine(step, str(err))
    return None

  def iter_good(self, abstract_state: Any):
    """Yield `(step, state)` for each verified checkpoint in ascending order, one in memory at a time."""
    for step in self.steps():
      try:
        yield step, self.restore(step, abstract_state)
      except ValueError as err:
        self._quarantine(step, str(err))

  def close(self) -> None:
    self._manager.close()
