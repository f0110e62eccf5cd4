"""Seeds sharded over devices and processes give the single-device result.

Each multi-device run is a subprocess (`tests/sharding_worker.py`): `XLA_FLAGS` and `jax.distributed` must be set
before JAX starts. Results agree to float32 rounding (a seed's arithmetic is the same, XLA's blocking of a batched
matmul with a different number of seeds per device is not), as between a 3-seed vmap and three single-seed runs.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import sharding_worker

WORKER = Path(sharding_worker.__file__)
ROOT = WORKER.parents[1]


def _env(devices: int, **extra) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  env.update({k: str(v) for k, v in extra.items()})
  return env


def _run(runs: list[tuple[Path, int]], *, devices: int = 1, **env) -> list[dict]:
  """Train each `(workdir, seeds)` in one subprocess with `devices` CPU devices; their dumps."""
  subprocess.run(
    [sys.executable, str(WORKER), *[f"{w}:{n}:0" for w, n in runs]],
    cwd=ROOT,
    env=_env(devices, **env),
    check=True,
    timeout=240,
  )
  return [dict(np.load(w / "dump.npz")) for w, _ in runs]


def _assert_same(a: dict, b: dict, keys=None):
  keys = keys or [k for k in a if k.startswith(("param", "feat"))]
  assert keys
  for k in keys:
    np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.fixture(scope="module")
def one_device(tmp_path_factory) -> dict:
  """The single-device references: 8 seeds and 3 seeds, trained in one subprocess (shared by both tests)."""
  root = tmp_path_factory.mktemp("one_device")
  one, alone = _run([(root / "one", 8), (root / "alone", 3)])
  return {8: one, 3: alone}


def test_eight_devices_train_and_evaluate_like_one(tmp_path, one_device):
  # 3 seeds: a count the 8 devices do not divide runs replicated
  one, alone = one_device[8], one_device[3]
  eight, odd = _run([(tmp_path / "eight", 8), (tmp_path / "odd", 3)], devices=8)
  assert int(eight["n_shards"]) == 8 and "seed" in str(eight["spec"])
  assert int(one["step"]) == int(eight["step"]) == 6
  _assert_same(one, eight)
  _assert_same(alone, odd)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_write_one_checkpoint_equal_to_one_process_and_resume_on_one(tmp_path, one_device):
  port = _free_port()
  multi = tmp_path / "multi"
  procs = [
    subprocess.Popen(
      [sys.executable, str(WORKER), f"{multi}:8:0"],
      cwd=ROOT,
      env=_env(2, LEUT_JAX_INIT=1, LEUT_COORDINATOR=f"127.0.0.1:{port}", LEUT_NUM_PROCESSES=2, LEUT_PROCESS_ID=i),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
    )
    for i in range(2)
  ]
  try:
    outs = [p.communicate(timeout=240)[0].decode(errors="replace") for p in procs]
  finally:
    for p in procs:
      p.kill()
  assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outs)
  multi_dump = dict(np.load(multi / "dump.npz"))
  assert int(multi_dump["n_shards"]) == 4
  single = one_device[8]
  _assert_same(single, multi_dump, [k for k in single if k.startswith("param")])
  ckpt = multi / "checkpoints" / "backprop"
  assert sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()) == [0, 2, 6]
  rows = [json.loads(line) for line in (multi / "metrics.jsonl").read_text().splitlines()]
  assert len(rows) == 8 * 3  # written once, not once per process
  # a host is lost before the last milestone finished: its digest never landed; one process resumes from epoch 1
  digests = json.loads((ckpt / "digests.json").read_text())
  del digests["6"]
  (ckpt / "digests.json").write_text(json.dumps(digests))
  [resumed] = _run([(multi, 8)])
  assert int(resumed["step"]) == 6 and (ckpt / "corrupt" / "6").exists()
  _assert_same(single, resumed, [k for k in single if k.startswith("param")])
