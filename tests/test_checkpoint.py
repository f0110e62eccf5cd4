"""Milestone checkpoints: round trip, kill-and-resume equals an uninterrupted run, damage is detected."""

import json
import warnings

import jax
import numpy as np
import pytest

from leut import checkpoint, experiment
from leut.config import ConfigMismatchError
from leut.models import cnn
from leut.train import loop
from leut.train import run as train_run
from tests.helpers import random_train_data, tiny_config


class Killed(RuntimeError):
  pass


def _final_state(workdir, config, data):
  _, trainer = train_run.build(config, "backprop", data)
  ck = train_run.checkpoints_for(workdir, "backprop")
  step, state = ck.restore_latest(trainer.abstract_state(config.seeds))
  ck.close()
  return step, state


def test_save_restore_round_trip_reproduces_features(tmp_path):
  config = tiny_config(seeds=2)
  data = random_train_data()
  _, trainer = train_run.build(config, "backprop", data)
  keys = loop.seed_keys(0, 2)
  state, _ = trainer.run_segment(trainer.init_all(keys), keys, 2)
  ck = checkpoint.MilestoneCheckpoints(tmp_path / "ck")
  ck.save(2, state)
  back = ck.restore(2, trainer.abstract_state(2))
  x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32)
  for s in range(2):
    pick = lambda t: jax.tree.map(lambda a: a[s], t)  # noqa: E731
    f1 = cnn.features(
      pick(state.params),
      pick(state.model_state),
      x,
    )
    f2 = cnn.features(pick(back.params), pick(back.model_state), x)
    for layer in f1:
      np.testing.assert_array_equal(f1[layer], f2[layer])
  assert checkpoint.state_digest(state) == checkpoint.state_digest(back)


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
  config = tiny_config()
  data = random_train_data()
  train_run.train_rule(config, tmp_path / "straight", "backprop", data, progress=False)

  real_build = train_run.build
  calls = {"n": 0}

  def build_that_dies(*a, **k):
    rule, trainer = real_build(*a, **k)

    def segment(*args):
      calls["n"] += 1
      if calls["n"] == 3:  # dies during epoch 3, after the epoch-1 milestone was saved
        raise Killed()
      return trainer.run_segment(*args)

    return rule, trainer._replace(run_segment=segment)

  monkeypatch.setattr(train_run, "build", build_that_dies)
  with pytest.raises(Killed):
    train_run.train_rule(config, tmp_path / "killed", "backprop", data, progress=False)
  monkeypatch.setattr(train_run, "build", real_build)
  assert train_run.checkpoints_for(tmp_path / "killed", "backprop").steps() == [0, 2]  # epochs 0, 1
  train_run.train_rule(config, tmp_path / "killed", "backprop", data, progress=False)

  step_a, a = _final_state(tmp_path / "straight", config, data)
  step_b, b = _final_state(tmp_path / "killed", config, data)
  assert step_a == step_b == 3 * 2
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
  jax.tree.map(np.testing.assert_array_equal, a.model_state, b.model_state)


def test_damaged_checkpoint_is_reported_and_the_previous_one_used(tmp_path):
  config = tiny_config()
  data = random_train_data()
  train_run.train_rule(config, tmp_path, "backprop", data, progress=False)
  last = tmp_path / "checkpoints" / "backprop" / "6"
  victims = [p for p in last.rglob("*") if p.is_file() and p.stat().st_size > 64 and "metadata" not in p.name]
  assert victims, "expected array files in the checkpoint"
  for v in victims:
    v.write_bytes(v.read_bytes()[: v.stat().st_size // 2])  # truncate, as a killed copy would
  _, trainer = train_run.build(config, "backprop", data)
  ck = train_run.checkpoints_for(tmp_path, "backprop")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    step, _ = ck.restore_latest(trainer.abstract_state(config.seeds))
  assert step == 2
  assert any("checkpoints/backprop/6" in str(w.message) for w in caught)
  assert (tmp_path / "checkpoints" / "backprop" / "corrupt" / "6").exists()
  # resuming retrains the lost milestone
  train_run.train_rule(config, tmp_path, "backprop", data, progress=False)
  assert ck.steps()[-1] == 6


def test_unfinished_write_without_digest_is_not_trusted(tmp_path):
  config = tiny_config(seeds=1)
  _, trainer = train_run.build(config, "backprop", random_train_data())
  state = trainer.init_all(loop.seed_keys(0, 1))
  ck = checkpoint.MilestoneCheckpoints(tmp_path)
  ck.save(0, state)
  digests = json.loads((tmp_path / "digests.json").read_text())
  del digests["0"]
  (tmp_path / "digests.json").write_text(json.dumps(digests))
  assert ck.steps() == []
  with pytest.warns(checkpoint.CorruptCheckpointWarning, match="never finished"):
    assert ck.restore_latest(trainer.abstract_state(1)) is None


def test_workdir_made_with_another_config_is_refused(tmp_path):
  experiment.prepare_workdir(tiny_config(), tmp_path)
  experiment.prepare_workdir(tiny_config(**{"eval.resolutions": [32]}), tmp_path)  # evaluation-only: fine
  with pytest.raises(ConfigMismatchError, match="seeds"):
    experiment.prepare_workdir(tiny_config(seeds=4), tmp_path)
