"""Milestone checkpoints: round trip, kill-and-resume equals an uninterrupted run, damage is detected and set aside,
and nothing that is not damage (a failed read, a code change) moves or deletes a checkpoint."""

import errno
import json
import shutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leut import checkpoint, experiment
from leut.config import ConfigMismatchError
from leut.models import cnn
from leut.train import loop, milestones
from tests.helpers import random_train_data, tiny_config


class Killed(RuntimeError):
  pass


def _final_state(workdir, config, data):
  _, trainer = milestones.build(config, "backprop", data)
  ck = milestones.checkpoints_for(workdir, "backprop")
  step, state = ck.restore_latest(trainer.abstract_state(config.seeds))
  ck.close()
  return step, state


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """One uninterrupted tiny run (3 seeds, milestones 0, 1, 3 at 2 steps per epoch): steps 0, 2, 6."""
  config, data = tiny_config(), random_train_data()
  workdir = tmp_path_factory.mktemp("straight")
  milestones.train_rule(config, workdir, "backprop", data, progress=False)
  return workdir, config, data


def _copy(trained, tmp_path):
  shutil.copytree(trained[0], tmp_path / "wd")
  return tmp_path / "wd"


def flip_a_byte(step_dir):
  """Flip one byte in the middle of the largest file of a checkpoint (bit rot, a bad copy)."""
  victim = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
  raw = bytearray(victim.read_bytes())
  raw[len(raw) // 2] ^= 0xFF
  victim.write_bytes(bytes(raw))


def tiny_state(seed=0):
  rng = np.random.default_rng(seed)
  return {"w": jnp.asarray(rng.normal(size=(32, 32)), jnp.float32), "b": {"n": jnp.arange(3, dtype=jnp.int32)}}


ABSTRACT = jax.eval_shape(tiny_state)


def test_save_restore_round_trip_reproduces_features(tmp_path):
  config = tiny_config(seeds=2)
  data = random_train_data()
  _, trainer = milestones.build(config, "backprop", data)
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


def _metric_keys(workdir):
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [(r["rule"], r["seed"], r["epoch"]) for r in rows]


def test_killed_run_resumes_to_the_uninterrupted_result(trained, tmp_path, monkeypatch):
  straight, config, data = trained
  real_build = milestones.build
  calls = {"n": 0}

  def build_that_dies(*a, **k):
    rule, trainer = real_build(*a, **k)

    def segment(*args):
      calls["n"] += 1
      if calls["n"] == 3:  # dies during epoch 3, after epoch 2's metrics and the epoch-1 milestone were written
        raise Killed()
      return trainer.run_segment(*args)

    return rule, trainer._replace(run_segment=segment)

  monkeypatch.setattr(milestones, "build", build_that_dies)
  with pytest.raises(Killed):
    milestones.train_rule(config, tmp_path / "killed", "backprop", data, progress=False)
  monkeypatch.setattr(milestones, "build", real_build)
  assert milestones.checkpoints_for(tmp_path / "killed", "backprop").steps() == [0, 2]  # epochs 0, 1
  milestones.train_rule(config, tmp_path / "killed", "backprop", data, progress=False)

  step_a, a = _final_state(straight, config, data)
  step_b, b = _final_state(tmp_path / "killed", config, data)
  assert step_a == step_b == 3 * 2
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
  jax.tree.map(np.testing.assert_array_equal, a.model_state, b.model_state)
  # epoch 2 was trained twice (before the kill and after the resume from epoch 1): its metrics are there once
  keys = _metric_keys(tmp_path / "killed")
  assert sorted(keys) == sorted(_metric_keys(straight)) and len(set(keys)) == len(keys) == 3 * 3


def test_damaged_checkpoint_is_reported_and_the_previous_one_used(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  _, config, data = trained
  last = workdir / "checkpoints" / "backprop" / "6"
  victims = [p for p in last.rglob("*") if p.is_file() and p.stat().st_size > 64 and "metadata" not in p.name]
  assert victims, "expected array files in the checkpoint"
  for v in victims:
    v.write_bytes(v.read_bytes()[: v.stat().st_size // 2])  # truncate, as a killed copy would
  _, trainer = milestones.build(config, "backprop", data)
  ck = milestones.checkpoints_for(workdir, "backprop")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    step, _ = ck.restore_latest(trainer.abstract_state(config.seeds))
  assert step == 2
  assert any("checkpoints/backprop/6" in str(w.message) for w in caught)
  assert (workdir / "checkpoints" / "backprop" / "corrupt" / "6").exists()
  # resuming retrains the lost milestone
  milestones.train_rule(config, workdir, "backprop", data, progress=False)
  assert ck.steps()[-1] == 6


def test_a_damaged_older_milestone_is_retrained_from_the_good_one_below_it(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  _, config, data = trained
  flip_a_byte(workdir / "checkpoints" / "backprop" / "2")  # epoch 1; the newest (epoch 3) is intact
  with pytest.warns(checkpoint.CorruptCheckpointWarning, match="backprop/2"):
    milestones.train_rule(config, workdir, "backprop", data, progress=False)
  assert (workdir / "checkpoints" / "backprop" / "corrupt" / "2").is_dir()
  _, trainer = milestones.build(config, "backprop", data)
  abstract = trainer.abstract_state(config.seeds)
  ck, ref = milestones.checkpoints_for(workdir, "backprop"), milestones.checkpoints_for(trained[0], "backprop")
  assert ck.steps() == [0, 2, 6]
  for step in (2, 6):  # retrained to the same bits, and the epoch-3 checkpoint still verifies
    assert checkpoint.state_digest(ck.restore(step, abstract)) == checkpoint.state_digest(ref.restore(step, abstract))


def test_unfinished_write_without_digest_is_not_trusted(tmp_path):
  config = tiny_config(seeds=1)
  _, trainer = milestones.build(config, "backprop", random_train_data())
  state = trainer.init_all(loop.seed_keys(0, 1))
  ck = checkpoint.MilestoneCheckpoints(tmp_path)
  ck.save(0, state)
  digests = json.loads((tmp_path / "digests.json").read_text())
  del digests["0"]
  (tmp_path / "digests.json").write_text(json.dumps(digests))
  assert ck.steps() == []
  with pytest.warns(checkpoint.CorruptCheckpointWarning, match="never finished"):
    assert ck.restore_latest(trainer.abstract_state(1)) is None


@pytest.mark.parametrize(
  "error",
  [OSError(errno.EIO, "Input/output error"), RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 9 GiB")],
  ids=["transient_io", "out_of_memory"],
)
def test_a_failed_read_of_an_intact_checkpoint_is_raised_as_it_is_and_moves_nothing(tmp_path, monkeypatch, error):
  ck = checkpoint.MilestoneCheckpoints(tmp_path)
  ck.save(0, tiny_state(0))
  ck.save(2, tiny_state(1))

  def failing_restore(*a, **k):
    raise error

  monkeypatch.setattr(ck._manager, "restore", failing_restore)
  with pytest.raises(type(error), match=str(error.args[-1])[:20]):
    ck.restore_latest(ABSTRACT)
  assert not (tmp_path / "corrupt").exists()
  assert ck.steps() == [0, 2]
  monkeypatch.undo()
  assert checkpoint.state_digest(ck.restore(2, ABSTRACT)) == checkpoint.state_digest(tiny_state(1))


@pytest.mark.parametrize("change", ["new_leaf", "new_shape"])
def test_a_state_of_another_structure_stops_as_other_code_and_moves_nothing(tmp_path, change):
  ck = checkpoint.MilestoneCheckpoints(tmp_path)
  ck.save(0, tiny_state())
  if change == "new_leaf":
    other = dict(ABSTRACT, v=jax.ShapeDtypeStruct((4,), jnp.float32))
  else:
    other = dict(ABSTRACT, w=jax.ShapeDtypeStruct((32, 16), jnp.float32))
  with pytest.raises(Exception, match="written by other code"):
    ck.restore_latest(other)
  assert not (tmp_path / "corrupt").exists() and ck.steps() == [0]
  assert checkpoint.state_digest(ck.restore(0, ABSTRACT)) == checkpoint.state_digest(tiny_state())


def test_a_flipped_byte_is_set_aside_and_the_previous_checkpoint_used(tmp_path):
  ck = checkpoint.MilestoneCheckpoints(tmp_path)
  ck.save(0, tiny_state(0))
  ck.save(2, tiny_state(1))
  flip_a_byte(tmp_path / "2")
  with pytest.warns(checkpoint.CorruptCheckpointWarning, match="corrupt"):
    step, state = ck.restore_latest(ABSTRACT)
  assert step == 0 and checkpoint.state_digest(state) == checkpoint.state_digest(tiny_state(0))
  assert (tmp_path / "corrupt" / "2").is_dir() and ck.steps() == [0]


def test_a_second_quarantine_of_a_step_keeps_the_first_copy(tmp_path):
  ck = checkpoint.MilestoneCheckpoints(tmp_path)
  ck.save(0, tiny_state(0))
  for attempt in (1, 2):
    ck.save(2, tiny_state(attempt))
    flip_a_byte(tmp_path / "2")
    with pytest.warns(checkpoint.CorruptCheckpointWarning):
      assert ck.restore_latest(ABSTRACT)[0] == 0
  copies = sorted((tmp_path / "corrupt").iterdir())
  assert [p.name for p in copies] == ["2", "2.1"]
  assert all(any(f.is_file() for f in p.rglob("*")) for p in copies)  # both copies still hold their files


def test_workdir_made_with_another_config_is_refused(tmp_path):
  experiment.prepare_workdir(tiny_config(), tmp_path)
  experiment.prepare_workdir(tiny_config(**{"eval.resolutions": [32]}), tmp_path)  # evaluation-only: fine
  with pytest.raises(ConfigMismatchError, match="seeds"):
    experiment.prepare_workdir(tiny_config(seeds=4), tmp_path)
