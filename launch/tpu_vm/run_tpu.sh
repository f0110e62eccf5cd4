#!/bin/bash
# leut on a Cloud TPU VM pod slice: the same command on every worker (big_vision's run_tpu.sh).
#
#   gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$ZONE --worker=all \
#     --command="cd leut && bash launch/tpu_vm/run_tpu.sh experiments/quickstart.py --workdir /mnt/shared/workdirs/quickstart --config.seeds=64"
#
# (copy the repository to every worker first, e.g. `gcloud compute tpus tpu-vm scp --recurse --worker=all . $TPU_NAME:leut`)
# Creates .venv (or uses LEUT_VENV) on first use with jax[tpu], then runs `leut run` with LEUT_JAX_INIT=1 on this worker;
# jax.distributed.initialize() finds the other workers by itself. The workdir must be on a filesystem every worker mounts (e.g. Filestore/NFS at /mnt/shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${LEUT_VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip
  "$VENV/bin/pip" install -q -e . "jax[tpu]" -f https://storage.googleapis.com/jax-releases/libtpu_releases.html
fi
exec env LEUT_JAX_INIT=1 "$VENV/bin/python" -m leut run "$@"
