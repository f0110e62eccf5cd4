"""The workdir: the one module that knows where each file lives and how it is written.

WORKDIR/config.json                       the config, the command that last wrote the tables, and `provenance`: leut's
                                          version and git commit and every rule's resolved settings (`leut.config`)
WORKDIR/leut.lock                         {pid, host, command, since} of the run using the workdir (`locked`)
WORKDIR/checkpoints/<rule>/<step>/        Orbax milestone checkpoints, all seeds in each (`leut.checkpoint`)
WORKDIR/checkpoints/<rule>/digests.json   SHA-256 of each checkpoint's state and files, recorded after each save
WORKDIR/checkpoints/<rule>/corrupt/       damaged checkpoints set aside as <step>, <step>.1, ... (never deleted)
WORKDIR/checkpoints/<rule>/superseded/    good checkpoints replaced by a retrained one that differs from them
WORKDIR/metrics.jsonl                     training loss/accuracy, one row per rule, seed and epoch
WORKDIR/results/*.csv, bootstrap_draws.npz   the evaluation's tables (`leut.evaluate`) and the report's
WORKDIR/results/COMPLETE                  written last by an evaluation: the hash of config.json's evaluation part and
                                          of every evaluation table; `leut report` refuses tables it does not match
WORKDIR/figures/                          the report's figures
WORKDIR/summary.md                        the report's headline numbers

Every table, `summary.md`, `config.json`, the digests and the marker are written with `write_atomic` (a temporary
file in the same folder, fsync, `os.replace`), so a kill or a full disk leaves the previous version or the new one,
never a mix. Only process 0 of a multi-host run writes these files (`leut.distributed`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import socket
import time
import warnings
from pathlib import Path

from leut import distributed
from leut.errors import LeutWarning, WorkdirError

CONFIG = "config.json"
LOCK = "leut.lock"
METRICS = "metrics.jsonl"
RESULTS = "results"
FIGURES = "figures"
SUMMARY = "summary.md"
COMPLETE = "COMPLETE"
CHECKPOINTS = "checkpoints"
DIGESTS = "digests.json"  # in each checkpoints/<rule>/
CORRUPT = "corrupt"  # checkpoints/<rule>/corrupt/<step>[.n]: damaged, set aside
SUPERSEDED = "superseded"  # checkpoints/<rule>/superseded/<step>[.n]: replaced by a retrained state that differs
DRAWS = "bootstrap_draws.npz"
# Tables the evaluation writes (the report's inputs); the completion marker covers exactly these and DRAWS.
EVALUATION_TABLES = (
  "rsa",
  "accuracy",
  "weights",
  "noise_ceiling",
  "partial",
  "bootstrap",
  "bootstrap_differences",
  "best_layer_cv",
  "cka",
  "encoding",
  "model_similarity",
  "two_level_bootstrap",
  "bn_calibration",
  "cka_bootstrap",
  "cka_bootstrap_differences",
  "cka_two_level_bootstrap",
  "encoding_bootstrap",
  "encoding_bootstrap_differences",
  "encoding_two_level_bootstrap",
  "brain_truth",
)
PROVENANCE = "provenance"  # the config.json key that holds what is not config (code version, resolved settings)


class Workdir:
  """Paths of one workdir; callers ask it instead of joining names themselves."""

  def __init__(self, root: str | os.PathLike):
    self.root = Path(root)

  def __repr__(self) -> str:
    return f"Workdir({str(self.root)!r})"

  @property
  def config(self) -> Path:
    return self.root / CONFIG

  @property
  def lock_file(self) -> Path:
    return self.root / LOCK

  @property
  def metrics(self) -> Path:
    return self.root / METRICS

  @property
  def results(self) -> Path:
    return self.root / RESULTS

  @property
  def figures(self) -> Path:
    return self.root / FIGURES

  @property
  def summary(self) -> Path:
    return self.root / SUMMARY

  @property
  def complete(self) -> Path:
    return self.results / COMPLETE

  @property
  def draws(self) -> Path:
    return self.results / DRAWS

  def checkpoints(self, rule: str) -> Path:
    return self.root / CHECKPOINTS / rule

  def table(self, name: str) -> Path:
    return self.results / f"{name}.csv"

  def read_table(self, name: str):
    """`read_csv(self.table(name))`: the evaluation's table `name`, or None when it was not written."""
    return read_csv(self.table(name))

  def evaluation_files(self) -> list[Path]:
    return [self.table(n) for n in EVALUATION_TABLES] + [self.draws]


def set_aside_path(folder: Path, step: int) -> Path:
  """The first free name of `<folder>/<step>`, `<step>.1`, `<step>.2`, ...: each set-aside copy keeps its own."""
  target, n = folder / str(step), 0
  while target.exists():
    n += 1
    target = folder / f"{step}.{n}"
  return target


# ----- atomic writes --------------------------------------------------------------------------------------------


def _fsync_dir(folder: Path) -> None:
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:  # some platforms cannot open a directory
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
  """Yield a temporary path beside `path` to write to; on success it is fsynced and moved over `path` in one step.

  On any failure (a full disk, a kill signal raised as an exception) the temporary file is removed and `path` keeps
  its previous content. The temporary name ends with the same suffix, for writers that insist on one (`np.savez`).
  """
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
  try:
    yield tmp
    with open(tmp, "rb+") as f:
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    tmp.unlink(missing_ok=True)
    raise
  _fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
  """Replace `path` with `data` atomically (see `atomic_output`)."""
  with atomic_output(path) as tmp:
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
  return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
  return write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | os.PathLike, df) -> Path:
  """A pandas DataFrame as CSV without its index, atomically."""
  return write_atomic(path, df.to_csv(index=False))


def read_csv(path: str | os.PathLike):
  """The table at `path` as a pandas DataFrame, or None when no table was written there (no file, or an empty one)."""
  import pandas as pd  # here, not at import: the workdir layout is needed long before any table is read

  path = Path(path)
  return pd.read_csv(path) if path.exists() and path.stat().st_size > 0 else None


def file_sha256(path: str | os.PathLike) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


# ----- config.json ----------------------------------------------------------------------------------------------


def read_config(wd: Workdir) -> tuple[dict, dict]:
  """`(config fields and command, provenance)` from config.json."""
  if not wd.config.exists():
    raise WorkdirError(f"{wd.root} has no {CONFIG}; is it a workdir made by `leut run`?")
  try:
    saved = json.loads(wd.config.read_text())
  except json.JSONDecodeError as err:
    raise WorkdirError(
      f"{wd.config}: not valid JSON ({err}); restore it from a backup or use a new --workdir"
    ) from None
  provenance = saved.pop(PROVENANCE, None) or {}
  return saved, provenance


def write_config(wd: Workdir, config: dict, provenance: dict) -> None:
  """Replace config.json (process 0 only)."""
  if distributed.is_primary():
    write_json(wd.config, {**config, PROVENANCE: provenance})


# ----- the lock -------------------------------------------------------------------------------------------------

_held: set[Path] = set()
_UNREADABLE_LOCK_GRACE_S = 30.0  # a lock file that is empty or garbled for this long was left by a crash mid-write


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # exists, owned by someone else
    return True
  return True


def _read_lock(path: Path) -> dict | None:
  try:
    holder = json.loads(path.read_text())
  except FileNotFoundError:
    return {}
  except (json.JSONDecodeError, UnicodeDecodeError):
    return None
  return holder if isinstance(holder, dict) else None


def _stale(path: Path, holder: dict | None) -> str:
  """Why the lock at `path` may be taken over ('' if it may not)."""
  if holder is None:
    age = time.time() - path.stat().st_mtime
    return f"it is unreadable and {age:.0f} s old" if age > _UNREADABLE_LOCK_GRACE_S else ""
  if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
    return f"its process {holder['pid']} on this host ({holder['host']}) is gone"
  return ""


def _acquire(path: Path, command: str) -> None:
  me = {
    "pid": os.getpid(),
    "host": socket.gethostname(),
    "command": command,
    "since": datetime.datetime.now().isoformat(timespec="seconds"),
  }
  for _ in range(3):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      holder = _read_lock(path)
      if holder == {}:  # released between our attempt and our read
        continue
      why = _stale(path, holder)
      if not why:
        who = (
          "another run"
          if holder is None
          else (
            f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since', '?')}"
            + (f" ({holder['command']})" if holder.get("command") else "")
          )
        )
        raise WorkdirError(
          f"{path.parent} is in use by {who}; two runs on one workdir would mix their checkpoints and tables. "
          f"Wait for it to finish, or, if that process is gone, delete {path}"
        ) from None
      warnings.warn(f"taking over the stale lock {path}: {why}", LeutWarning, stacklevel=4)
      path.unlink(missing_ok=True)
      continue
    with os.fdopen(fd, "w") as f:
      f.write(json.dumps(me))
      f.flush()
      os.fsync(f.fileno())
    return
  raise WorkdirError(f"could not take the lock {path}: it keeps changing; is another run starting?")


@contextlib.contextmanager
def locked(wd: Workdir, command: str = ""):
  """Hold `WORKDIR/leut.lock` for the duration (process 0 takes it; every process fails if it cannot).

  Re-entrant within a process (`leut run` evaluates under the lock it took). A lock whose process is gone from this
  host is taken over with a warning; one held from another host cannot be checked and is never taken over.
  """
  path = wd.lock_file.absolute()
  if path in _held:
    yield
    return

  def take():
    path.parent.mkdir(parents=True, exist_ok=True)
    _acquire(path, command)

  distributed.on_primary(take)
  _held.add(path)
  try:
    yield
  finally:
    _held.discard(path)
    if distributed.is_primary():
      holder = _read_lock(path)
      if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


# ----- the completion marker ------------------------------------------------------------------------------------


def clear_complete(wd: Workdir) -> None:
  """Withdraw the marker before the first evaluation table is replaced (process 0 only)."""
  if distributed.is_primary():
    if wd.complete.exists():
      wd.complete.unlink()
      _fsync_dir(wd.results)


def write_complete(wd: Workdir, config_sha256: str) -> None:
  """Write the marker last: the hash of the config's evaluation part and of every evaluation file now present."""
  if distributed.is_primary():
    files = {p.name: file_sha256(p) for p in wd.evaluation_files() if p.exists()}
    write_json(wd.complete, {"config_sha256": config_sha256, "files": files})


def check_complete(wd: Workdir, config_sha256: str) -> None:
  """Raise `WorkdirError` unless the marker matches config.json and every evaluation file, byte for byte."""
  fix = f"run `leut evaluate --workdir {wd.root}` to score the checkpoints again"
  if not wd.complete.exists():
    raise WorkdirError(
      f"{wd.results} holds no completed evaluation ({RESULTS}/{COMPLETE} is missing: the last evaluation was "
      f"interrupted or failed); {fix}"
    )
  try:
    marker = json.loads(wd.complete.read_text())
    recorded, files = marker["config_sha256"], marker["files"]
  except (json.JSONDecodeError, KeyError, TypeError):
    raise WorkdirError(f"{wd.complete} is damaged; {fix}") from None
  if recorded != config_sha256:
    raise WorkdirError(
      f"the tables in {wd.results} were evaluated with another {CONFIG} than the one now in {wd.root} "
      f"(an evaluation stopped between the two, or {CONFIG} was edited); {fix}"
    )
  for path in wd.evaluation_files():
    want = files.get(path.name)
    if want is None and path.exists():
      raise WorkdirError(f"{path} is not part of the completed evaluation (left over or copied in); {fix}")
    if want is not None and not path.exists():
      raise WorkdirError(f"{path} is missing from the completed evaluation; {fix}")
    if want is not None and file_sha256(path) != want:
      raise WorkdirError(f"{path} differs from the table the evaluation wrote (truncated or edited); {fix}")


# ----- metrics.jsonl --------------------------------------------------------------------------------------------


def _metric_rows(wd: Workdir) -> list[dict]:
  if not wd.metrics.exists():
    return []
  rows = []
  for line in wd.metrics.read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:  # the last line of a run killed mid-write
      continue
  return rows


def drop_metrics_after(wd: Workdir, rule: str, epoch: int) -> None:
  """Remove `rule`'s rows of epochs after `epoch` (about to be trained again) and any duplicate row, keeping the
  last of each (rule, seed, epoch); process 0 only. Rewritten atomically, and only when something changes."""
  if not distributed.is_primary() or not wd.metrics.exists():
    return
  rows = _metric_rows(wd)
  keep: dict[tuple, dict] = {}
  for row in rows:
    if row.get("rule") == rule and int(row.get("epoch", 0)) > epoch:
      continue
    keep[(row.get("rule"), row.get("seed"), row.get("epoch"))] = row
  kept = list(keep.values())
  text = "".join(json.dumps(r) + "\n" for r in kept)
  if text != wd.metrics.read_text():
    write_atomic(wd.metrics, text)


def append_metrics(wd: Workdir, rows: list[dict]) -> None:
  """Append rows to metrics.jsonl (process 0 only)."""
  if distributed.is_primary():
    with wd.metrics.open("a") as f:
      f.write("".join(json.dumps(r) + "\n" for r in rows))
