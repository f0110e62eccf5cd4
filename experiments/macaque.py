"""The quickstart against a synthetic macaque release: does leut recover what each simulated recording contains?

Commands (from the repository root, after `pip install -e .`; each about 2 minutes on 2 CPU cores):

    leut run experiments/macaque.py:majajhong2015 --workdir workdirs/majajhong2015        # V4, IT
    leut run experiments/macaque.py:freemanziemba2013 --workdir workdirs/freemanziemba2013  # V1, V2
    leut run experiments/macaque.py:tvsd --workdir workdirs/tvsd                          # V1, V4, IT

What it does: the quickstart's untrained network and backprop, 3 seeds, on the embedded synthetic data, scored
against the synthetic stand-in of the release (written on first use in the release's own file format, from the
simulation in `leut.data.synthetic_macaque`: V1 Gabor energy, V2 energies and their products, V4 energies and shape,
IT category). Backprop trains for 8 epochs on 2,048 images per seed instead of the quickstart's 4 on 1,024: in the
quickstart's budget backprop reaches ~31% held-out accuracy and fc1 has barely begun to represent category, which the
MajajHong2015 IT sites need (README, "Brain datasets" has what each release showed).

What it shows (summary.md, "Ground truth recovered"): (d) the scored RDMs recover each region's noise-free truth RDM
(the loader path), and where the release has the region, (a) the untrained layer best aligned with V1 is an early
conv layer, (b) backprop raises fc1–IT alignment, (c) the untrained conv1 aligns with V1.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import ml_collections

RELEASES = {"majajhong2015": ["V4", "IT"], "freemanziemba2013": ["V1", "V2"], "tvsd": ["V1", "V4", "IT"]}


def get_config(arg: str = "majajhong2015") -> ml_collections.ConfigDict:
  """`arg` = the release (`RELEASES`)."""
  if arg not in RELEASES:
    raise ValueError(f"experiments/macaque.py:{arg}: unknown release {arg!r}; use one of {list(RELEASES)}")
  spec = importlib.util.spec_from_file_location("quickstart", Path(__file__).with_name("quickstart.py"))
  quickstart = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(quickstart)
  config = quickstart.get_config()
  config.rules = ["untrained", "backprop"]
  config.epochs = 8
  config.milestones = [0, 1, 2, 4, 8]
  config.data.train_subset = 2048
  config.data.brain = arg
  config.data.rois = RELEASES[arg]
  return config
