"""The three launch scripts, run as a user runs them, train the same networks.

`launch/local/multi_device.sh` runs one process on 4 simulated CPU devices; `launch/slurm/train.sbatch` runs under a
stand-in `srun` that starts two tasks with the variables SLURM gives them (JAX's own SLURM detection connects them);
two copies of `launch/tpu_vm/run_tpu.sh` play two TPU-VM workers (pointed at each other with LEUT_COORDINATOR, as
no TPU metadata server is here). Each trains 4 seeds of one rule on the synthetic default, and trains only (`leut run
--train-only`: scoring with several processes is `tests/test_distributed.py`'s, scoring in or after a run
`tests/test_end_to_end.py`'s), so the multi-process checkpoints must equal the local run's to float32 rounding, the
workers must report two processes sharing 4 devices, and `leut evaluate` scores the train-only workdir.
All three start leut as `python -m leut run ...`, the one entry point besides the `leut` console script.
"""

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers import PLUMBING_RUN

ROOT = Path(__file__).resolve().parents[1]
TINY = [
  "--config.rules=backprop",
  "--config.seeds=4",
  "--config.epochs=1",
  "--config.milestones=0,1",
  "--config.model.widths=(4,8,8)",
  "--config.model.fc_dim=16",
  "--config.data.train_subset=64",
  "--config.eval.resolutions=32",
  "--config.eval.test_images=64",
  "--config.data.n_stimuli=40",
  *PLUMBING_RUN,
  "--no-progress",
]

FAKE_SRUN = """#!/bin/bash
# Stand-in for srun on one machine: start SLURM_NTASKS copies of the command with per-task SLURM variables.
while [[ "$1" == --* ]]; do shift; done
pids=()
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NODEID=0 "$@" > "$FAKE_SRUN_LOGS/task$i.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
"""


def _env(**extra) -> dict:
  env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LEUT_", "XLA_FLAGS"))}
  env.update(JAX_PLATFORMS="cpu", LEUT_VENV=sys.prefix)
  env.update({k: str(v) for k, v in extra.items()})
  return env


def _args(workdir: Path, synthetic_dir: Path) -> list[str]:
  return ["experiments/quickstart.py", "--workdir", str(workdir), f"--config.data.synthetic_dir={synthetic_dir}", *TINY]


def _free_port(lo: int = 1024, hi: int = 65535) -> int:
  for port in np.random.default_rng().permutation(np.arange(lo, hi)):
    with socket.socket() as s:
      try:
        s.bind(("127.0.0.1", int(port)))
      except OSError:
        continue
      return int(port)
  raise RuntimeError("no free port")


def _final_checkpoint(workdir: Path) -> dict:
  """The last milestone's arrays of `workdir`'s backprop run, by leaf path, read without a restore target."""
  import jax
  import orbax.checkpoint as ocp

  steps = sorted(int(p.name) for p in (workdir / "checkpoints" / "backprop").iterdir() if p.name.isdigit())
  where = workdir / "checkpoints" / "backprop" / str(steps[-1]) / "default"
  with ocp.PyTreeCheckpointer() as checkpointer:  # as host arrays: the saving run's device layout is not here
    as_numpy = jax.tree.map(
      lambda _: ocp.RestoreArgs(restore_type=np.ndarray), checkpointer.metadata(where).item_metadata.tree
    )
    tree = checkpointer.restore(where, restore_args=as_numpy)
  return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _rsa(workdir: Path) -> pd.DataFrame:
  rsa = pd.read_csv(workdir / "results" / "rsa.csv")
  keys = [c for c in ("rule", "seed", "epoch", "layer", "roi", "subject", "pairs", "resolution", "arm") if c in rsa]
  return rsa.sort_values(keys).reset_index(drop=True)


def test_python_dash_m_leut_is_what_the_launchers_run_and_it_joins_two_processes():
  for script in ("launch/local/multi_device.sh", "launch/slurm/train.sbatch", "launch/tpu_vm/run_tpu.sh"):
    assert '/bin/python" -m leut run "$@"' in (ROOT / script).read_text(), script
  coordinator = f"127.0.0.1:{_free_port()}"
  workers = [
    subprocess.Popen(
      [sys.executable, "-m", "leut", "report", "--help"],
      cwd=ROOT,
      env=_env(
        LEUT_JAX_INIT=1,
        LEUT_COORDINATOR=coordinator,
        LEUT_NUM_PROCESSES=2,
        LEUT_PROCESS_ID=i,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
      ),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]
  try:
    outs = [w.communicate(timeout=120)[0] for w in workers]
  finally:
    for w in workers:
      w.kill()
  for i, (w, out) in enumerate(zip(workers, outs)):
    assert w.returncode == 0, out[-2000:]
    # initialised once, before the command line is parsed
    assert out.startswith(f"leut: process {i} of 2, 2 of 4 devices (cpu)\nusage: leut report"), out[-2000:]


def test_local_and_tpu_launchers_train_the_same_networks(tmp_path, synthetic_dir):
  """Two processes of the TPU launcher train the networks the one-process local launcher trains (the SLURM launcher
  runs the same `python -m leut run` and joins its tasks the same way: `test_slurm_launcher_joins_its_tasks`)."""
  from leut import cli

  local = tmp_path / "local"
  subprocess.run(
    ["bash", "launch/local/multi_device.sh", *_args(local, synthetic_dir), "--train-only"],
    cwd=ROOT,
    check=True,
    env=_env(LEUT_CPU_DEVICES=4),
    timeout=400,
    capture_output=True,
  )

  tpu = tmp_path / "tpu"
  coordinator = f"127.0.0.1:{_free_port()}"
  tpu_logs = [tmp_path / f"tpu_worker{i}.log" for i in range(2)]  # files, not pipes: neither worker blocks on output
  workers = [
    subprocess.Popen(
      ["bash", "launch/tpu_vm/run_tpu.sh", *_args(tpu, synthetic_dir), "--train-only"],
      cwd=ROOT,
      env=_env(
        LEUT_COORDINATOR=coordinator,
        LEUT_NUM_PROCESSES=2,
        LEUT_PROCESS_ID=i,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
      ),
      stdout=log.open("w"),
      stderr=subprocess.STDOUT,
    )
    for i, log in enumerate(tpu_logs)
  ]
  try:
    for w in workers:
      w.wait(timeout=400)
  finally:
    for w in workers:
      w.kill()
  outs = [log.read_text() for log in tpu_logs]
  assert all(w.returncode == 0 for w in workers), "\n".join(o[-3000:] for o in outs)
  for i, out in enumerate(outs):
    assert f"leut: process {i} of 2, 2 of 4 devices (cpu)" in out, out[-2000:]

  assert not (local / "results").exists()  # --train-only scored nothing
  want = _final_checkpoint(local)
  for workdir in (tpu,):
    assert not (workdir / "results").exists()
    got = _final_checkpoint(workdir)
    assert got.keys() == want.keys()
    for name, value in want.items():
      np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5, err_msg=f"{workdir.name} {name}")
    # one process writes the non-array files: one metrics row per seed and milestone, not one per process
    assert len((workdir / "metrics.jsonl").read_text().splitlines()) == len(
      (local / "metrics.jsonl").read_text().splitlines()
    )

  assert cli.main(["evaluate", "--workdir", str(tpu), "--no-progress"]) == 0  # scoring a train-only workdir later
  scored = _rsa(tpu)
  assert set(scored.rule) == {"backprop"} and set(scored.seed) == {0, 1, 2, 3} and set(scored.epoch) == {0, 1}
  assert set(scored.layer) == {"conv1", "conv2", "conv3", "fc1"}
  assert len(scored) == len(scored[["seed", "epoch", "layer", "roi", "subject"]].drop_duplicates()) == 4 * 2 * 4 * 4 * 4
  assert scored["rho"].notna().all()


def test_slurm_launcher_joins_its_tasks(tmp_path):
  """launch/slurm/train.sbatch under a stand-in srun with two tasks: JAX's SLURM detection makes them two processes
  of one program before `leut run` parses its command line (here `--help`, so nothing is trained)."""
  bin_dir, logs = tmp_path / "bin", tmp_path / "slurm_logs"
  bin_dir.mkdir()
  logs.mkdir()
  (bin_dir / "srun").write_text(FAKE_SRUN)
  (bin_dir / "srun").chmod((bin_dir / "srun").stat().st_mode | stat.S_IEXEC)
  port = _free_port(61440)  # JAX derives the coordinator port from the job id: 61440 + id % 4096
  slurm_env = _env(
    PATH=f"{bin_dir}:{os.environ['PATH']}",
    FAKE_SRUN_LOGS=logs,
    SLURM_JOB_ID=port - 61440,
    SLURM_NTASKS=2,
    SLURM_STEP_NODELIST="localhost",
    SLURM_NODELIST="localhost",
    XLA_FLAGS="--xla_force_host_platform_device_count=2",
  )
  done = subprocess.run(
    ["bash", "launch/slurm/train.sbatch", "--help"],
    cwd=ROOT,
    env=slurm_env,
    timeout=120,
    capture_output=True,
    text=True,
  )
  task_logs = [(logs / f"task{i}.log").read_text() for i in range(2)]
  assert done.returncode == 0, "\n".join(t[-3000:] for t in task_logs)
  for i, log in enumerate(task_logs):
    assert log.startswith(f"leut: process {i} of 2, 2 of 4 devices (cpu)\nusage: leut run"), log[-2000:]
