#!/bin/bash
# leut on one machine with several devices (all local GPUs, or N simulated CPU devices), seeds sharded over them.
#
#   bash launch/local/multi_device.sh experiments/quickstart.py --workdir workdirs/quickstart --config.seeds=8
#   LEUT_CPU_DEVICES=8 bash launch/local/multi_device.sh experiments/quickstart.py --workdir workdirs/quickstart_cpu8
#
# One process sees every local device, so no jax.distributed is needed. LEUT_CPU_DEVICES=N splits the CPU into N
# XLA devices (a test of the sharded program; on CPU it is no faster than one device). The venv is .venv or LEUT_VENV.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${LEUT_VENV:-$PWD/.venv}"
if [ -n "${LEUT_CPU_DEVICES:-}" ]; then
  export JAX_PLATFORMS=cpu
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=${LEUT_CPU_DEVICES}"
fi
exec "$VENV/bin/python" -m leut run "$@"
