"""Does the evaluation resolution decide the headline V1 effect? (arXiv 2608.12408, evaluation resolution).

Command (set the data paths; nothing downloads):

    leut run experiments/cifar10_cnn_resolution_sweep.py --workdir workdirs/resolution_sweep \
        --config.data.cifar_dir=/data/cifar10 --config.data.things_fmri_dir=/data/things-fmri/betas_csv \
        --config.data.things_images_dir=/data/things/object_images

An existing learning-rules workdir can be re-scored instead of retrained:
`leut evaluate --workdir workdirs/learning_rules --config.eval.resolutions=32,64,96,128,160,224
--config.eval.upsampled=True`.

Runtime: not yet measured on a GPU by this project; feature extraction at 6 resolutions × 2 arms dominates.

Published numbers (PROTOCOL §4.5, v3: per-subject ρ, cross-run pairs, conv1→V1, mean of 5 seeds):
untrained 0.045 (32 px) → 0.053 (224 px); BP 0.046 → 0.023; gap untrained − BP −0.001 ± 0.005 at 32 px (3/5 seeds)
→ +0.030 ± 0.004 at 224 px (5/5). Upsampled arm at 224 px: gap +0.035 [0.023, 0.046].
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
  c.milestones = [0, 40]
  c.data.source = "files"
  c.data.rois = ["V1", "V2", "LOC", "IT"]
  c.eval.resolutions = [32, 64, 96, 128, 160, 224]
  c.eval.upsampled = True
  c.eval.pairs = ["cross_run"]
  return c
