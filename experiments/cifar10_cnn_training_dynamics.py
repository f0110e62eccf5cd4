"""When does alignment change? Every rule scored at 8 milestones (arXiv 2605.30556, training dynamics).

Command (set the data paths; nothing downloads):

    leut run experiments/cifar10_cnn_training_dynamics.py --workdir workdirs/training_dynamics \
        --config.data.cifar_dir=/data/cifar10 --config.data.things_fmri_dir=/data/things-fmri/betas_csv \
        --config.data.things_images_dir=/data/things/object_images [--config.seeds=32]

Runtime: not yet measured on a GPU by this project (target: under 2 minutes with 5 seeds and under 10 with 32 on
one H100; the published run took hours on a T4). `benchmarks/end_to_end.py` measures each stage.

Published numbers (PROTOCOL §4.4; pre-fix, best layer, per-subject ρ averaged, all pairs, 224 px): V1 epoch 0 → 1:
BP 0.102 → 0.011 (−90%), FA 0.089 → 0.044 (−50%), PC 0.093 → 0.070 (−25%), STDP 0.097 → 0.067 (−31%); epoch 40:
PC 0.064, STDP 0.056, BP 0.022, FA 0.019. After the BatchNorm fix (paper C v3, conv1→V1, cross-run pairs): BP
0.053 → 0.012 → 0.023 (e0, e1, e40), PC 0.054 → 0.014 → 0.014, i.e. the local rules do *not* preserve V1. With 5
seeds the exact sign-flip test cannot go below p = 1/32 one-sided; with `--config.seeds=32` it can.
"""

import ml_collections

from leut.defaults import protocol_config, published_initialisations


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  c = protocol_config()
  # the published starting points: FA/STDP kaiming-normal (FA with a conv bias, xavier-normal B), BP/PC/untrained
  # PyTorch's default; the untrained network is then the epoch 0 of BP and PC only
  init_per_rule, rule_hparams = published_initialisations()
  c.model.init_per_rule = init_per_rule
  c.rule_hparams.update(rule_hparams)
  c.rules = ["untrained", "backprop", "feedback_alignment", "predictive_coding", "stdp"]
  c.seeds = 5
  c.epochs = 40
  c.milestones = [0, 1, 2, 5, 10, 20, 30, 40]
  c.data.source = "files"
  c.data.rois = ["V1", "V2", "V3", "V4", "LOC", "IT"]
  c.eval.resolutions = [224]
  c.eval.pairs = ["all", "cross_run"]
  return c
