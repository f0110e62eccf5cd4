"""Config checks before any work: each nonsense field is one `ConfigError` naming it; the defaults pass."""

import ml_collections
import pytest

from leut import checks
from leut import config as config_lib
from leut.defaults import protocol_config
from leut.errors import ConfigError


def _config(**fields):
  """The protocol defaults with `fields` set, as a config read back from a config.json is (not type-locked)."""
  d = config_lib.to_dict(protocol_config())
  for key, value in fields.items():
    node = d
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return ml_collections.ConfigDict(d)


def test_the_protocol_defaults_pass():
  checks.check_config(protocol_config())


@pytest.mark.parametrize(
  "fields, match",
  [
    ({"seeds": 0}, "seeds=0 must be at least 1"),
    ({"seeds": 2.5}, "seeds must be an integer"),
    ({"epochs": -1}, "epochs=-1 must be at least 0"),
    ({"milestones": [0, 5, 50]}, r"milestones \[50\] are outside 0..epochs=40"),
    ({"batch_size": 0}, "batch_size=0 must be at least 1"),
    ({"batch_size": 9000}, "batch_size=9000 must be at most data.train_subset"),
    ({"rules": []}, "rules is empty"),
    ({"rules": ["backprop", "backprop"]}, r"rules lists \['backprop'\] more than once"),
    ({"rules": ["hebbian"]}, "rules: unknown learning rule"),
    ({"rule_hparams": {"hebbian": {}}}, r"rule_hparams names unknown rule\(s\) \['hebbian'\]"),
    ({"rule_hparams": {"backprop": {"dropout": 0.1}}}, r"rule_hparams.backprop.dropout: rule 'backprop' does not"),
    ({"rule_hparams": {"backprop": {"dropout_rate": "high"}}}, r"rule_hparams.backprop.dropout_rate must be a number"),
    ({"rule_hparams": {"stdp": {"time_steps": 2.5}}}, r"rule_hparams.stdp.time_steps must be an integer"),
    ({"data.source": "file"}, "data.source must be one of"),
    ({"data.rois": []}, "data.rois is empty"),
    ({"data.zscore": "session"}, "data.zscore must be one of"),
    ({"data.n_stimuli": 2}, "data.n_stimuli must be 0"),
    ({"eval.resolutions": [40]}, r"eval.resolutions \[40\] must be multiples of 32"),
    ({"eval.resolutions": []}, "eval.resolutions is empty"),
    ({"eval.pairs": ["all", "within_run"]}, r"eval.pairs has unknown entries \['within_run'\]"),
    ({"eval.metric": "manhattan"}, "eval.metric must be one of"),
    ({"eval.method": "kendall"}, "eval.method must be one of"),
    ({"eval.partial_controls": ("pixel", "edges")}, r"eval.partial_controls has unknown entries \['edges'\]"),
    ({"eval.n_boot": -5}, "eval.n_boot=-5 must be at least 0"),
    ({"eval.stats_epochs": "last"}, "eval.stats_epochs must be one of"),
    ({"eval.upsampled": "yes"}, "eval.upsampled must be true or false"),
    ({"report.alternative": "bigger"}, "report.alternative must be one of"),
    ({"report.n_mc": 0}, "report.n_mc=0 must be at least 1"),
    ({"report.layer_for_roi": {"V1": 3}}, "report.layer_for_roi must map ROI names to layer names"),
    ({"report.figure_formats": ("png", "tiff")}, "report.figure_formats must name one or more of"),
    ({"report.figure_formats": ()}, "report.figure_formats must name one or more of"),
  ],
)
def test_a_nonsense_field_is_named(fields, match):
  with pytest.raises(ConfigError, match=match):
    checks.check_config(_config(**fields))


def test_eval_metrics_unknown_names_list_the_valid_ones():
  with pytest.raises(
    ConfigError, match=r"eval.metrics has unknown entries \['ridge'\]; allowed: \['rsa', 'cka', 'encoding'\]"
  ):
    checks.check_config(_config(**{"eval.metrics": ["rsa", "ridge"]}))
  with pytest.raises(ConfigError, match=r"eval.metrics=\['cka'\] lacks 'rsa'"):
    checks.check_config(_config(**{"eval.metrics": ["cka"]}))
  checks.check_config(_config(**{"eval.metrics": ["rsa", "cka", "encoding"]}))


@pytest.mark.parametrize("metric", ["cka", "encoding"])
def test_response_metrics_on_precomputed_rdms_are_refused_naming_the_dataset_and_metric(metric):
  rdms_only = {"data.source": "files", "data.brain_rdms_dir": "/rdms", "eval.metrics": ["rsa", metric]}
  with pytest.raises(
    ConfigError, match=rf"eval.metrics \['{metric}'\] need response-level .*things_fmri as precomputed"
  ):
    checks.check_config(_config(**rdms_only))
  checks.check_config(_config(**{**rdms_only, "eval.metrics": ["rsa"]}))  # RSA needs only the RDMs
  checks.check_config(_config(**{**rdms_only, "data.brain_rdms_dir": "", "data.things_fmri_dir": "/betas"}))
