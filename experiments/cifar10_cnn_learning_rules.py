"""Learning-rule comparison at the final checkpoint (arXiv 2604.16875, "Untrained CNNs match backpropagation at V1").

Command (set the three data paths first; nothing downloads):

    leut run experiments/cifar10_cnn_learning_rules.py --workdir workdirs/learning_rules \
        --config.data.cifar_dir=/data/cifar10 --config.data.things_fmri_dir=/data/things-fmri/betas_csv \
        --config.data.things_images_dir=/data/things/object_images

Runtime: not yet measured on a GPU by this project; the training is 5 rules × 5 seeds × 40 epochs × 62 steps,
all seeds vmapped, which is expected to take minutes on one H100 (`benchmarks/end_to_end.py` measures it).

Published numbers to compare with (PROTOCOL §4.2–4.3). Paper A v4 (repaired models; per-subject ρ on cross-run
pairs, 224 px, mean over 5 seeds): V1 untrained 0.053, BP 0.022, FA 0.009, PC 0.012, STDP 0.027; LOC untrained
−0.003, BP 0.008; IT ≈ 0.004–0.009 for all. Mean-RDM, all pairs, repaired: V1 untrained 0.075, BP 0.031,
FA 0.012, PC 0.016, STDP 0.037. leut's `predictive_coding`/`stdp` are the textbook rules, so compare their
numbers with the published ones only through `predictive_coding_published`/`stdp_published`.
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
  c.rules = [
    "untrained",
    "backprop",
    "feedback_alignment",
    "predictive_coding",
    "stdp",
    "predictive_coding_published",
    "stdp_published",
  ]
  c.seeds = 5
  c.epochs = 40
  c.milestones = [0, 40]
  c.data.source = "files"
  c.data.rois = ["V1", "V2", "LOC", "IT"]
  c.eval.resolutions = [224]
  c.eval.pairs = ["all", "cross_run"]
  return c
