"""Compile time of a network's seed-vmapped initialisation: XLA's default optimisation level against level 1.

    python benchmarks/init_compile.py --seeds 3

The initialisation runs once per rule, and XLA's default level spends seconds optimising the threefry rounds of its
random draws. `leut.xla_cpu.run_once_jit` compiles it at LLVM level 1; this prints, for the protocol CNN (with both
initialisations the rules use), a 5-block CNN and the residual network, the compile time at each level side by side
in one process, and whether the weights are bit-identical.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from leut.models import cnn, resnet
from leut.train import loop
from leut.xla_cpu import run_once_jit

NETWORKS = {
  "cnn (32,64,128) torch_default": (cnn.network((32, 64, 128), 512), {}),
  "cnn (32,64,128) kaiming_normal+bias": (
    cnn.network((32, 64, 128), 512),
    {"conv_init": "kaiming_normal", "conv_bias": True},
  ),
  "cnn (16,16,32,32,64)": (cnn.network((16, 16, 32, 32, 64), 512), {}),
  "resnet (32,64,128)": (resnet.network((32, 64, 128)), {}),
}


def _compile(jitted, keys):
  start = time.perf_counter()
  compiled = jitted.lower(keys).compile()
  seconds = time.perf_counter() - start
  return seconds, [np.asarray(x) for x in jax.tree.leaves(compiled(keys))]


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--seeds", type=int, default=3)
  args = ap.parse_args()
  keys = loop.seed_keys(0, args.seeds)
  print(f"jax {jax.__version__}, {jax.default_backend()}, {args.seeds} seeds vmapped")
  print("| network | default level (s) | level 1 (s) | ratio | bit-identical |")
  print("|---|---|---|---|---|")
  for name, (network, options) in NETWORKS.items():

    def init(key, network=network, options=options):
      return network.init(key, **options)

    default_s, default = _compile(jax.jit(jax.vmap(init)), keys)
    quick_s, quick = _compile(run_once_jit(jax.vmap(init)), keys)
    same = all(np.array_equal(a, b) for a, b in zip(default, quick, strict=True))
    print(f"| {name} | {default_s:.2f} | {quick_s:.2f} | {default_s / quick_s:.1f} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
  main()
