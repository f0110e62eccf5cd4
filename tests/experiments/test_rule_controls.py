"""experiments/rule_controls.py: every learning rule the controls need, in the quickstart's affordable setting, and a
config that passes leut's checks (rule names, hyperparameters, sizes) before any work starts."""

from leut import checks
from leut import config as config_lib

# issue 17's controls: weight-transport-free (sign symmetry, Kolen-Pollack), Hebbian, self-supervised
CONTROLS = {"sign_symmetry", "kolen_pollack", "soft_hebb", "contrastive"}


def test_rule_controls_trains_every_rule_and_passes_the_config_checks():
  config = config_lib.load("experiments/rule_controls.py")
  checks.check_config(config)  # raises a ConfigError naming the first bad field
  quickstart = config_lib.load("experiments/quickstart.py")
  assert set(config.rules) == set(quickstart.rules) | CONTROLS
  assert config.data.source == "synthetic"


def test_rule_controls_has_the_quickstart_sizes():
  controls = config_lib.load("experiments/rule_controls.py")
  quickstart = config_lib.load("experiments/quickstart.py")
  for field in ("seeds", "epochs", "milestones", "batch_size", "data.train_subset", "data.rois", "eval.resolutions"):
    a, b = controls, quickstart
    for part in field.split("."):
      a, b = a[part], b[part]
    assert list(a) == list(b) if isinstance(a, (list, tuple)) else a == b, field
  assert controls.eval.test_images == quickstart.eval.test_images
  assert controls.rule_hparams.to_dict() == quickstart.rule_hparams.to_dict()
