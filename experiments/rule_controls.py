"""Controls for the learning-rule comparison: every rule on the embedded synthetic default, in the quickstart setting.

The papers' conclusions need controls: "FA falls below untrained at V1" may come from random feedback or from low
accuracy; "supervised training degrades V1" may come from the rule or from the supervision. This trains, from the
same initialisation per seed, the weight-transport-free rules that approach backprop's accuracy (sign symmetry,
Kolen–Pollack), local unsupervised Hebbian learning (SoftHebb, with a linear readout), a self-supervised objective
trained by backprop (contrastive, SimCLR's NT-Xent, with a linear readout), next to the quickstart's rules, and the
report compares them at matched held-out accuracy as well as per epoch.

Command (from the repository root, after `pip install -e .`):

    leut run experiments/rule_controls.py --workdir workdirs/rule_controls

Runtime: 10 min 43 s on 2 CPU cores, JIT compilation included (2026-11-30, with other work sharing the cores; the
quickstart's five rules are about 4 minutes of it).

What it does: the quickstart's sizes (3 seeds vmapped in one program, 4 epochs of 1,024 images at batch 32,
checkpoints at epochs 0, 1, 2, 4; conv1/conv2/conv3/fc1 scored at 64 px on 120 stimuli against the simulated
THINGS-fMRI release, V1/V2 driven by Gabor energy, LOC by shape, IT by category), with every rule's own protocol
optimiser and default hyperparameters, except the quickstart's shorter predictive-coding inference and STDP spike
trains.

What to read (summary.md, results/, figures/): held-out accuracy per rule (results/accuracy_summary.csv), alignment
per rule and milestone (results/alignment.csv, figures/alignment.png), each rule against the untrained network
(results/tests_vs_untrained.csv), and each pair of rules at held-out accuracies both reach
(results/tests_accuracy_matched.csv, figures/alignment_vs_accuracy.png).

What it found (README, "Learning rules", has the numbers): the weight-transport-free rules nearly reach backprop's
held-out accuracy (0.29-0.33 at epoch 4) while FA and the contrastive objective stay near chance; with 3 seeds no
difference is significant (smallest attainable p 0.25). All 3 seeds put every trained rule but Kolen-Pollack below
the untrained network at V1 and every rule above it at LOC, and, at matched accuracy, FA below the local and
weight-transport-free rules at V1.
"""

import importlib.util
from pathlib import Path

import ml_collections

RULES = [
  "untrained",
  "backprop",
  "feedback_alignment",
  "sign_symmetry",
  "kolen_pollack",
  "predictive_coding",
  "stdp",
  "soft_hebb",
  "contrastive",
]


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """The quickstart's config (its data, sizes and PC/STDP settings) with every rule."""
  spec = importlib.util.spec_from_file_location("quickstart", Path(__file__).with_name("quickstart.py"))
  quickstart = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(quickstart)
  config = quickstart.get_config(arg)
  config.rules = list(RULES)
  return config
