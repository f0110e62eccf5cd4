"""The workdir's files: atomic writes, the lock, the completion marker and metrics.jsonl on resume."""

import errno
import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from leut import workdir as workdir_lib
from leut.errors import LeutWarning, WorkdirError


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
  path = tmp_path / "results" / "rsa.csv"
  workdir_lib.write_csv(path, pd.DataFrame({"rho": [0.1, 0.2]}))
  before = path.read_bytes()
  with pytest.raises(OSError, match="No space"):
    with workdir_lib.atomic_output(path) as tmp:
      tmp.write_text("rho\n0.3\n")  # half of the new table, then the disk is full
      raise OSError(errno.ENOSPC, "No space left on device")
  assert path.read_bytes() == before and os.listdir(path.parent) == ["rsa.csv"]
  workdir_lib.write_atomic(path, "rho\n0.3\n")
  assert path.read_text() == "rho\n0.3\n" and os.listdir(path.parent) == ["rsa.csv"]


def _dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def test_a_stale_lock_on_this_host_is_taken_over_with_a_message(tmp_path):
  wd = workdir_lib.Workdir(tmp_path)
  wd.lock_file.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "command": "leut run"}))
  with pytest.warns(LeutWarning, match="stale lock.*gone"):
    with workdir_lib.locked(wd, "leut evaluate"):
      holder = json.loads(wd.lock_file.read_text())
      assert holder["pid"] == os.getpid() and holder["command"] == "leut evaluate"
      with workdir_lib.locked(wd, "nested"):  # re-entrant: `leut run` evaluates under the lock it took
        pass
      assert wd.lock_file.exists()
  assert not wd.lock_file.exists()


def test_a_lock_held_from_another_host_is_never_taken_over(tmp_path):
  wd = workdir_lib.Workdir(tmp_path)
  wd.lock_file.write_text(json.dumps({"pid": _dead_pid(), "host": "node-17", "command": "leut run X"}))
  with pytest.raises(WorkdirError, match=r"in use by pid \d+ on node-17.*leut run X.*delete"):
    with workdir_lib.locked(wd):
      pass
  assert json.loads(wd.lock_file.read_text())["host"] == "node-17"


def test_the_completion_marker_matches_the_config_and_every_table(tmp_path):
  wd = workdir_lib.Workdir(tmp_path)
  workdir_lib.write_csv(wd.table("rsa"), pd.DataFrame({"rho": [0.1]}))
  workdir_lib.write_csv(wd.table("accuracy"), pd.DataFrame({"accuracy": [0.5]}))
  with pytest.raises(WorkdirError, match="COMPLETE is missing"):
    workdir_lib.check_complete(wd, "abc")
  workdir_lib.write_complete(wd, "abc")
  workdir_lib.check_complete(wd, "abc")
  with pytest.raises(WorkdirError, match="another config.json"):
    workdir_lib.check_complete(wd, "abd")
  workdir_lib.write_csv(wd.table("partial"), pd.DataFrame({"rho": [0.1]}))  # left over from another evaluation
  with pytest.raises(WorkdirError, match="partial.csv is not part of the completed evaluation"):
    workdir_lib.check_complete(wd, "abc")
  wd.table("partial").unlink()
  wd.table("accuracy").write_text("accuracy\n0.6\n")
  with pytest.raises(WorkdirError, match="accuracy.csv differs"):
    workdir_lib.check_complete(wd, "abc")
  workdir_lib.clear_complete(wd)
  assert not wd.complete.exists()


def test_metrics_of_epochs_trained_again_are_replaced_not_duplicated(tmp_path):
  wd = workdir_lib.Workdir(tmp_path)
  rows = [{"rule": r, "seed": s, "epoch": e} for r in ("backprop", "stdp") for e in (1, 2, 3) for s in (0, 1)]
  workdir_lib.append_metrics(wd, rows)
  with wd.metrics.open("a") as f:
    f.write('{"rule": "backprop", "seed": 0, "ep')  # the last line of a run killed mid-write
  workdir_lib.drop_metrics_after(wd, "backprop", 1)  # resuming backprop from its epoch-1 checkpoint
  kept = [json.loads(line) for line in wd.metrics.read_text().splitlines()]
  assert [(r["rule"], r["epoch"]) for r in kept if r["rule"] == "backprop"] == [("backprop", 1)] * 2
  assert len([r for r in kept if r["rule"] == "stdp"]) == 6
