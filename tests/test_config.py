"""Config overrides: typed parsing, and one clear error naming the field for anything that does not parse."""

import pytest

from leut import config as config_lib
from leut.defaults import protocol_config


def test_overrides_take_the_type_of_the_field():
  c = protocol_config()
  for item in ("--config.seeds=7", "--config.rules=untrained,backprop", "--config.model.widths=(8,16)"):
    config_lib.apply_override(c, item)
  assert c.seeds == 7 and c.rules == ["untrained", "backprop"] and tuple(c.model.widths) == (8, 16)
  config_lib.apply_override(c, "--config.eval.partial_controls=")  # an empty list where a list may be empty
  assert tuple(c.eval.partial_controls) == ()
  config_lib.apply_override(c, "--config.rules=")  # parses; `leut.checks` refuses an empty rule list
  assert list(c.rules) == []


@pytest.mark.parametrize(
  "item, field",
  [
    ("--config.seeds=", "seeds"),
    ("--config.seeds=five", "seeds"),
    ("--config.eval.upsampled=maybe", "eval.upsampled"),
    ("--config.milestones=[0,1", "milestones"),
    ("--config.nonsense=1", "nonsense"),
  ],
)
def test_a_bad_override_is_one_error_naming_the_field(item, field):
  with pytest.raises(ValueError, match=field) as caught:
    config_lib.apply_override(protocol_config(), item)
  assert "\n" not in str(caught.value)


def test_resolved_rule_settings_merge_the_code_defaults_with_the_config():
  c = protocol_config()
  c.rules = ["backprop", "predictive_coding"]
  c.rule_hparams = {"backprop": {"dropout_rate": 0.1, "learning_rate": 0.01}}
  got = config_lib.resolved_rule_settings(c)
  assert got["backprop"] == {
    "rule": {"dropout_rate": 0.1},
    "optimizer": {"learning_rate": 0.01, "weight_decay": 1e-4, "clip_norm": 1.0},
  }
  assert "steps_per_epoch" not in got["predictive_coding"]["optimizer"] and got["predictive_coding"]["rule"]


def test_a_changed_setting_is_refused_and_another_commit_only_reported(tmp_path):
  saved = {"version": "0.1.0", "commit": "a" * 40, "resolved_rules": {"stdp": {"rule": {"time_steps": 5}}}}
  same_code = dict(saved, commit="b" * 40)
  note = config_lib.check_provenance(saved, same_code, tmp_path)
  assert "a" * 40 in note and "b" * 40 in note
  assert config_lib.check_provenance(saved, saved, tmp_path) == ""
  changed = dict(saved, resolved_rules={"stdp": {"rule": {"time_steps": 8}}})
  with pytest.raises(config_lib.ConfigMismatchError, match=r"stdp\.rule\.time_steps: workdir has 5.*resolves 8"):
    config_lib.check_provenance(saved, changed, tmp_path)


def test_any_rule_hyperparameter_is_an_override_merged_with_the_configs_own():
  """The quickstart names only PC's inference_steps and STDP's time_steps; the command line adds others (typed by
  the code's defaults), keeps those, and the result passes the config checks."""
  from leut import checks

  config = config_lib.load(
    "experiments/quickstart.py",
    [
      "--config.rule_hparams.predictive_coding.lr_r=0.05",
      "--config.rule_hparams.predictive_coding.inference_steps=3",
      "--config.rule_hparams.backprop.learning_rate=2e-3",
      "--config.rule_hparams.feedback_alignment.layers=all",
      "--config.rule_hparams.stdp.a_minus=1",
    ],
  )
  got = config_lib.to_dict(config)["rule_hparams"]
  own_time_steps = config_lib.load("experiments/quickstart.py").rule_hparams.stdp.time_steps  # kept, not replaced
  assert got == {
    "predictive_coding": {"inference_steps": 3, "lr_r": 0.05},
    "stdp": {"time_steps": own_time_steps, "a_minus": 1.0},
    "backprop": {"learning_rate": 2e-3},
    "feedback_alignment": {"layers": "all"},
  }
  assert isinstance(config.rule_hparams.stdp.a_minus, float) and isinstance(config.rule_hparams.stdp.time_steps, int)
  checks.check_rule_hparams(config)


@pytest.mark.parametrize(
  "item, message",
  [
    (
      "--config.rule_hparams.backprop.lr=0.1",
      r"rule 'backprop' has no hyperparameter 'lr'; its hyperparameters: clip_norm, dropout_rate, learning_rate, "
      r"weight_decay$",
    ),
    ("--config.rule_hparams.hebbian.lr=0.1", r"unknown learning rule 'hebbian'; available rules: .*backprop"),
    ("--config.rule_hparams.stdp.time_steps=2.5", r"rule_hparams.stdp.time_steps expected an integer, got '2.5'"),
  ],
)
def test_an_unknown_rule_hyperparameter_is_one_error_listing_the_valid_ones(item, message):
  with pytest.raises(config_lib.ConfigError, match=message) as caught:
    config_lib.apply_override(protocol_config(), item)
  assert "\n" not in str(caught.value)
