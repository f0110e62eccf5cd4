"""Milestone checkpoints with Orbax: all seeds of one rule in one checkpoint, every milestone kept, each verified.

Layout (`leut.workdir`): `WORKDIR/checkpoints/<rule>/<step>/` (Orbax) plus `digests.json`, which records for each step,
once its write has finished, a SHA-256 of every leaf of the state and of every file Orbax wrote. A step without a
record never finished writing.

Only evidence of damage sets a checkpoint aside: no record (an unfinished write), a restored state whose digest
differs from the record, or a failed read with a file that changed since it was written, is missing, or cannot be
decoded. Such a checkpoint is reported (`CorruptCheckpointWarning`) and moved to `<rule>/corrupt/<step>` (`<step>.1`,
`<step>.2`, ... for later copies: nothing is ever deleted). Any other failure to read (a transient I/O error, out of
memory) is raised as what it is and moves nothing; a checkpoint whose tree differs from what this code builds stops
with `StructureMismatchError` ("written by other code") and moves nothing.

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
from leut import workdir as workdir_lib
from leut.errors import LeutWarning, WorkdirError


class CorruptCheckpointWarning(LeutWarning):
  pass


class SupersededCheckpointWarning(LeutWarning):
  pass


class DamagedCheckpointError(WorkdirError, ValueError):
  """A checkpoint shows evidence of damage (the message says which); it is set aside by the callers that fall back."""


class StructureMismatchError(WorkdirError):
  """The checkpoint's tree differs from the one this code builds: the workdir was written by other code."""


# tensorstore status codes that mean the bytes on disk are not what was written (the others, e.g. UNAVAILABLE or
# RESOURCE_EXHAUSTED, are environment failures)
_DAMAGE_STATUS = ("DATA_LOSS", "OUT_OF_RANGE", "FAILED_PRECONDITION")


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


def _file_hashes(step_dir: Path) -> dict[str, str]:
  return {str(p.relative_to(step_dir)): workdir_lib.file_sha256(p) for p in sorted(step_dir.rglob("*")) if p.is_file()}


def _key_name(entry) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def _leaf_specs(tree) -> dict[tuple, tuple]:
  """{path of names: (shape, dtype)} of every array leaf; NamedTuple fields and dict keys name a path alike."""
  specs = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    if not hasattr(leaf, "shape"):
      continue
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
      name = "?"
    elif jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
      name = "prng_key"  # stored as its key data: shape and dtype differ from the typed key, so neither is compared
    else:
      name = str(np.dtype(dtype))
    specs[tuple(_key_name(e) for e in path)] = (tuple(leaf.shape), name)
  return specs


def _structure_differences(saved: dict, wanted: dict) -> list[str]:
  name = lambda p: "/".join(p)  # noqa: E731
  diffs = [f"{name(p)} is in the checkpoint but not in this code's state" for p in sorted(set(saved) - set(wanted))]
  diffs += [f"{name(p)} is in this code's state but not in the checkpoint" for p in sorted(set(wanted) - set(saved))]
  for p in sorted(set(saved) & set(wanted)):
    (s_shape, s_dtype), (w_shape, w_dtype) = saved[p], wanted[p]
    if "prng_key" in (s_dtype, w_dtype) or "?" in (s_dtype, w_dtype):
      continue
    if s_shape != w_shape or s_dtype != w_dtype:
      diffs.append(f"{name(p)} is {s_dtype}{list(s_shape)} in the checkpoint, {w_dtype}{list(w_shape)} in this code")
  return diffs


def _decode_error(err: BaseException) -> str:
  """A description of `err` if it (or an error it wraps) says stored bytes could not be decoded, else ''."""
  seen = set()
  while err is not None and id(err) not in seen:
    seen.add(id(err))
    if isinstance(err, (json.JSONDecodeError, UnicodeDecodeError, EOFError)):
      return f"{type(err).__name__}: {err}"
    if isinstance(err, FileNotFoundError):
      return f"a file is missing: {err}"
    text = str(err)
    if isinstance(err, ValueError) and text.startswith(_DAMAGE_STATUS):
      return text.splitlines()[0][:300]
    err = err.__cause__ or err.__context__
  return ""


class MilestoneCheckpoints:
  """Save and restore one rule's seed-stacked `TrainState` at milestone steps."""

  def __init__(self, directory: str | Path):
    self.directory = Path(directory).absolute()
    self.directory.mkdir(parents=True, exist_ok=True)
    options = ocp.CheckpointManagerOptions(max_to_keep=None, enable_async_checkpointing=False, create=True)
    # The handler is named so that a fresh manager can read a step's metadata before any save or restore.
    self._manager = ocp.CheckpointManager(
      self.directory, options=options, item_handlers=ocp.StandardCheckpointHandler()
    )
    self._digest_file = self.directory / workdir_lib.DIGESTS

  def _records(self) -> dict[str, dict]:
    """{step: {"state": digest, "files": {relative path: sha256}}}; records of older versions hold the digest only."""
    if not self._digest_file.exists():
      return {}
    raw = json.loads(self._digest_file.read_text())
    return {k: v if isinstance(v, dict) else {"state": v} for k, v in raw.items()}

  def steps(self) -> list[int]:
    """Steps whose checkpoint finished writing (its digest was recorded), ascending."""
    self._manager.reload()  # another process or manager may have written since
    recorded = self._records()
    return sorted(s for s in self._manager.all_steps() if str(s) in recorded)

  def all_steps(self) -> list[int]:
    """Every step Orbax holds, finished or not, ascending."""
    self._manager.reload()
    return sorted(self._manager.all_steps())

  def _write_records(self, records: dict[str, dict]) -> None:
    workdir_lib.write_atomic(self._digest_file, json.dumps(records, indent=1, sort_keys=True))

  def _move_aside(self, step: int, folder: str, reason: str, category) -> None:
    """Move `<step>` to `<folder>/<step>[.n]` and drop its record (process 0), then let every process see it."""
    warnings.warn(f"{reason}; moving it to {self.directory / folder}", category, stacklevel=3)
    distributed.barrier(f"leut-looked-{folder}-{self.directory}-{step}")  # no process still reads it when it moves
    if distributed.is_primary():
      src = self.directory / str(step)
      if src.exists():
        (self.directory / folder).mkdir(exist_ok=True)
        shutil.move(str(src), str(workdir_lib.set_aside_path(self.directory / folder, step)))
      records = self._records()
      if records.pop(str(step), None) is not None:
        self._write_records(records)
    distributed.barrier(f"leut-set-aside-{self.directory}-{step}")
    self._manager.reload()

  def _quarantine(self, step: int, reason: str) -> None:
    self._move_aside(step, workdir_lib.CORRUPT, reason, CorruptCheckpointWarning)

  def save(self, step: int, state: Any) -> None:
    """Write `state` as `step`. An unfinished leftover at `step` is set aside as corrupt; a verified checkpoint there
    is kept if it holds the same state, else set aside under `superseded/` (never deleted)."""
    digest = state_digest(state)  # collective in a multi-process run: every process computes it
    if step in self.all_steps():
      record = self._records().get(str(step))
      if record is None:
        self._quarantine(
          step, f"checkpoint {self.directory / str(step)} has no recorded digest: its write never finished"
        )
      elif record["state"] == digest and not self._changed_files(step, record):
        return
      else:
        self._move_aside(
          step,
          workdir_lib.SUPERSEDED,
          f"checkpoint {self.directory / str(step)} differs from the state retrained for it",
          SupersededCheckpointWarning,
        )
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()
    if distributed.is_primary():
      records = self._records()
      records[str(step)] = {"state": digest, "files": _file_hashes(self.directory / str(step))}
      self._write_records(records)  # a step counts as saved only once this lands
    distributed.barrier(f"leut-digest-{self.directory}-{step}")

  def _changed_files(self, step: int, record: dict) -> list[str]:
    """Files of `step` that are missing or differ from the hashes recorded when it was written."""
    recorded = record.get("files")
    if not recorded:
      return []
    step_dir = self.directory / str(step)
    changed = []
    for rel, sha in recorded.items():
      path = step_dir / rel
      if not path.is_file():
        changed.append(f"{rel} is missing")
      elif workdir_lib.file_sha256(path) != sha:
        changed.append(f"{rel} changed")
    return changed

  def _classify(self, step: int, record: dict, err: BaseException) -> str:
    """Evidence of damage behind a failed read of `step` ('' if none: the error is raised as it is)."""
    changed = self._changed_files(step, record)
    if changed:
      return "files differ from what was written (" + ", ".join(changed[:3]) + ")"
    return _decode_error(err)

  def _check_structure(self, step: int, abstract_state: Any, record: dict) -> None:
    where = self.directory / str(step)
    try:
      metadata = self._manager.item_metadata(step)
    except Exception as err:  # noqa: BLE001 - classified below; raised unchanged unless it is evidence of damage
      evidence = self._classify(step, record, err)
      if evidence:
        raise DamagedCheckpointError(f"checkpoint {where} cannot be read: {evidence}") from err
      raise
    if metadata is None:  # nothing to compare with; the restore itself will tell
      return
    diffs = _structure_differences(_leaf_specs(getattr(metadata, "tree", metadata)), _leaf_specs(abstract_state))
    if diffs:
      raise StructureMismatchError(
        f"checkpoint {where}: this workdir was written by other code: the state it holds differs from the one this "
        f"code builds ({'; '.join(diffs[:3])}{'; ...' if len(diffs) > 3 else ''}). Nothing was moved. Use the leut "
        "version that wrote it (config.json records its commit) or a new --workdir"
      )

  def restore(self, step: int, abstract_state: Any) -> Any:
    """Restore `step` into the structure of `abstract_state`.

    Raises:
      DamagedCheckpointError: evidence of damage (no recorded digest, a digest mismatch, changed or undecodable files).
      StructureMismatchError: the checkpoint's tree differs from `abstract_state` (other code wrote it).
      Anything else the read raised (I/O, memory), unchanged.
    """
    where = self.directory / str(step)
    record = self._records().get(str(step))
    if record is None:
      raise DamagedCheckpointError(f"checkpoint {where} has no recorded digest: its write never finished")
    self._check_structure(step, abstract_state, record)
    try:
      state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as err:  # noqa: BLE001 - classified below; raised unchanged unless it is evidence of damage
      evidence = self._classify(step, record, err)
      if evidence:
        raise DamagedCheckpointError(f"checkpoint {where} cannot be read: {evidence}") from err
      raise
    if state_digest(state) != record["state"]:
      raise DamagedCheckpointError(
        f"checkpoint {where} does not match the digest recorded when it was written (file damaged or changed)"
      )
    return state

  def verify(self, abstract_state: Any) -> list[int]:
    """Restore and check every checkpoint, oldest first, one in memory at a time; set aside each damaged one.

    Returns the steps that verified, ascending. Raises what `restore` raises other than damage.
    """
    good = []
    for step in self.all_steps():
      try:
        self.restore(step, abstract_state)
      except DamagedCheckpointError as err:
        self._quarantine(step, str(err))
      else:
        good.append(step)
    return good

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any] | None:
    """The newest checkpoint that restores and verifies, setting aside any damaged ones above it; None if none."""
    for step in reversed(self.all_steps()):
      try:
        return step, self.restore(step, abstract_state)
      except DamagedCheckpointError as err:
        self._quarantine(step, str(err))
    return None

  def restore_verified(self, step: int, abstract_state: Any) -> Any:
    """Restore `step`; if it is damaged, set it aside and raise the `DamagedCheckpointError`."""
    try:
      return self.restore(step, abstract_state)
    except DamagedCheckpointError as err:
      self._quarantine(step, str(err))
      raise

  def iter_good(self, abstract_state: Any):
    """Yield `(step, state)` for each verified checkpoint in ascending order, one in memory at a time."""
    for step in self.steps():
      try:
        yield step, self.restore(step, abstract_state)
      except DamagedCheckpointError as err:
        self._quarantine(step, str(err))

  def close(self) -> None:
    self._manager.close()
