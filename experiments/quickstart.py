"""Quickstart on the embedded synthetic default: does leut recover a brain whose ground truth is known?

Command (from the repository root, after `pip install -e .`):

    leut run experiments/quickstart.py --workdir workdirs/quickstart

Runtime: about 4 minutes on 2 CPU cores, JIT compilation included (the first run also writes the synthetic
dataset to `data_cache/synthetic`, ~20 s).

What it does: trains the protocol CNN from the same initialisation with each learning rule, 3 seeds vmapped in one
program, on a procedurally generated CIFAR-10-format dataset (10 shape classes on an oriented-texture background);
checkpoints at epochs 0, 1, 2, 4; scores conv1/conv2/conv3/fc1 of every checkpoint against a simulated
THINGS-fMRI release (3 subjects; V1/V2 driven by Gabor energy, LOC by shape, IT by category) on 120 stimuli at
64 px.

What it shows (results/rsa.csv, figures/alignment.png, summary.md): the untrained network's conv1 already aligns
with the Gabor-driven V1; supervised training raises fc1 alignment with the category-driven IT; and how fast each
rule changes early-layer alignment in its first epochs.
"""

import ml_collections

from leut.defaults import protocol_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  config = protocol_config()
  config.rules = ["untrained", "backprop", "feedback_alignment", "predictive_coding", "stdp"]
  # Fewer inference steps / spike time steps than the defaults keep the local rules within a laptop budget.
  config.rule_hparams = ml_collections.ConfigDict(
    {"predictive_coding": {"inference_steps": 4}, "stdp": {"time_steps": 3}}
  )
  config.seeds = 3
  config.epochs = 4
  config.milestones = [0, 1, 2, 4]
  config.data.source = "synthetic"
  config.batch_size = 32  # smaller than the protocol's 128: 4x the updates for the same compute on a laptop
  config.data.train_subset = 1024  # images per seed: 32 steps per epoch, 128 in all
  config.data.rois = ["V1", "V2", "LOC", "IT"]
  config.eval.resolutions = [64]
  config.eval.test_images = 300  # held-out accuracy to ±2.5 % (SE at 25 %): PC's readout runs inference per image
  return config
