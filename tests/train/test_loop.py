"""Training: seeds vmapped in one program equal separate runs; batches are pure functions of (key, step)."""

import jax
import jax.numpy as jnp
import numpy as np

from leut.models import cnn
from leut.train import batches, loop, milestones
from tests.helpers import random_train_data, tiny_config


def test_vmapped_three_seeds_equal_three_single_seed_runs():
  config = tiny_config()
  data = random_train_data()
  _, trainer = milestones.build(config, "backprop", data)
  keys = loop.seed_keys(0, 3)
  together, _ = trainer.run_segment(trainer.init_all(keys), keys, 4)
  for s in range(3):
    alone, _ = trainer.run_segment(trainer.init_all(keys[s : s + 1]), keys[s : s + 1], 4)
    jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a[s], b[0], rtol=2e-4, atol=2e-5), together.params, alone.params
    )
    assert int(together.step[s]) == 4


def test_seeds_differ_and_training_moves_weights():
  config = tiny_config()
  _, trainer = milestones.build(config, "backprop", random_train_data())
  keys = loop.seed_keys(0, 2)
  start = trainer.init_all(keys)
  w0 = np.asarray(start.params["conv1"]["kernel"])
  assert not np.allclose(w0[0], w0[1])
  end, metrics = trainer.run_segment(start, keys, 3)
  assert np.all(np.isfinite(metrics["loss"]))
  assert not np.allclose(np.asarray(end.params["conv1"]["kernel"]), w0)


def test_batches_are_a_pure_function_of_key_and_step_and_cover_each_epoch():
  data = random_train_data(n=64)
  subset = jnp.arange(48, dtype=jnp.int32)
  key = jax.random.key(1)
  seen = []
  for step in range(3):
    b1 = batches.batch_at(
      data, subset, key, key, jnp.int32(step), batch_size=16, steps_per_epoch=3, augment_images=False
    )
    b2 = batches.batch_at(
      data, subset, key, key, jnp.int32(step), batch_size=16, steps_per_epoch=3, augment_images=False
    )
    np.testing.assert_array_equal(b1.images, b2.images)
    seen.append(np.asarray(b1.labels))
  # one epoch visits every image of the subset once: compare label multisets with the subset's labels
  np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.sort(np.asarray(data.labels[:48])))


def test_augment_flips_and_crops_with_zero_padding():
  img = np.arange(2 * 4 * 4 * 1, dtype=np.uint8).reshape(2, 4, 4, 1) + 1
  out = np.asarray(batches.augment(jax.random.key(0), jnp.asarray(img), pad=1))
  for n in range(2):
    padded = np.pad(img[n], ((1, 1), (1, 1), (0, 0)))
    padded_flip = np.pad(img[n, :, ::-1], ((1, 1), (1, 1), (0, 0)))
    windows = [p[y : y + 4, x : x + 4] for p in (padded, padded_flip) for y in range(3) for x in range(3)]
    assert any(np.array_equal(out[n], w) for w in windows)


def test_normalize_uses_cifar_statistics():
  x = jnp.full((1, 1, 1, 3), 255, jnp.uint8)
  want = (1.0 - np.array([0.4914, 0.4822, 0.4465])) / np.array([0.247, 0.243, 0.261])
  np.testing.assert_allclose(np.asarray(batches.normalize(x))[0, 0, 0], want, rtol=1e-6)


def _label_recorder(n_steps: int, batch_size: int):
  """A rule that changes nothing and records each step's batch labels in its state."""
  from leut.rules import base

  def init(key, params):
    del key, params
    return jnp.zeros((), jnp.int32), jnp.full((n_steps, batch_size), -1, jnp.int32)

  def update(params, model_state, rule_state, batch, key):
    del key
    count, seen = rule_state
    metrics = {"loss": jnp.zeros(()), "accuracy": jnp.zeros(())}
    new_state = (count + 1, seen.at[count].set(batch.labels))
    return base.RuleUpdate(jax.tree.map(jnp.zeros_like, params), model_state, new_state, metrics)

  return base.LearningRule(init, update, represent=None)  # never evaluated


def test_segments_draw_the_batches_of_batch_at_across_epoch_boundaries():
  """The trainer shuffles each epoch once per segment; the batches must still be `batch_at`'s, step by step,
  whatever the segment lengths and wherever they start inside an epoch."""
  import optax

  n_images, batch_size, spe, total = 40, 4, 3, 8  # subset of 12 images: 3 steps per epoch, 8 steps span 3 epochs
  data = batches.TrainData(jnp.zeros((n_images, 32, 32, 3), jnp.uint8), jnp.arange(n_images, dtype=jnp.int32))
  trainer = loop.make_trainer(
    _label_recorder(total, batch_size),
    optax.sgd(0.0),
    data,
    n_subset=spe * batch_size,
    batch_size=batch_size,
    network=cnn.network((2, 2, 2), 4),
  )
  keys = loop.seed_keys(3, 2)
  runs = {}
  for lengths in ((8,), (2, 5, 1), (1,) * 8):
    state = trainer.init_all(keys)
    for n in lengths:
      state, _ = trainer.run_segment(state, keys, n)
    runs[lengths] = np.asarray(state.rule_state[1])
  for s in range(2):
    subset = trainer.init_all(keys).subset[s]
    want = [
      np.asarray(
        batches.batch_at(
          data,
          subset,
          jax.random.fold_in(keys[s], loop.TAG_SHUFFLE),
          keys[s],
          jnp.int32(t),
          batch_size=batch_size,
          steps_per_epoch=spe,
          augment_images=False,
        ).labels
      )
      for t in range(total)
    ]
    for lengths, seen in runs.items():
      np.testing.assert_array_equal(seen[s], np.stack(want), err_msg=f"segments {lengths}, seed {s}")
  assert not np.array_equal(runs[(8,)][0, :spe], runs[(8,)][0, spe : 2 * spe])  # epochs are shuffled differently


def test_a_seed_with_non_finite_weights_is_flagged_and_the_others_train_as_before():
  config = tiny_config()
  _, trainer = milestones.build(config, "backprop", random_train_data())
  keys = loop.seed_keys(0, 3)
  healthy, healthy_metrics = trainer.run_segment(trainer.init_all(keys), keys, 3)  # the segment donates its state
  assert not np.asarray(healthy_metrics["diverged"]).any()
  start = trainer.init_all(keys)
  kernel = start.params["conv1"]["kernel"]
  poisoned = start._replace(
    params={**start.params, "conv1": {**start.params["conv1"], "kernel": kernel.at[1, 0, 0, 0, 0].set(jnp.nan)}}
  )
  end, metrics = trainer.run_segment(poisoned, keys, 3)
  np.testing.assert_array_equal(np.asarray(metrics["diverged"]), [False, True, False])
  assert np.isnan(np.asarray(metrics["loss"])[1]) and np.isfinite(np.asarray(metrics["loss"])[[0, 2]]).all()
  for s in (0, 2):  # the seed vmap keeps seeds independent: the others are unaffected
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[s], b[s]), end.params, healthy.params)


def test_initialisation_is_selectable_per_rule_and_shared_otherwise():
  """With the published starting points FA starts from kaiming-normal convs with a zero bias, BP and the untrained
  baseline from PyTorch's default (bit-identical to each other); without them every rule starts alike."""
  from leut import models
  from leut.defaults import published_initialisations

  config = tiny_config(seeds=2)
  config.model.widths = (16, 16, 16)
  keys = loop.seed_keys(config.seed, 2)
  net = models.build(config.model)

  def params(name):
    return loop.network_init(net, models.init_options(config.model, name))(keys)[0]

  jax.tree.map(np.testing.assert_array_equal, params("untrained"), params("feedback_alignment"))
  config.model.init_per_rule = published_initialisations()[0]
  built = jax.eval_shape(milestones.build(config, "feedback_alignment", random_train_data())[1].init_all, keys)
  assert built.params["conv1"]["bias"].shape == (2, 16)  # the trainer takes the rule's own initialisation
  untrained, bp, fa = params("untrained"), params("backprop"), params("feedback_alignment")
  jax.tree.map(np.testing.assert_array_equal, untrained, bp)
  np.testing.assert_array_equal(fa["conv2"]["bias"], np.zeros((2, 16)))
  assert "bias" not in bp["conv2"]
  bound = 1 / np.sqrt(9 * 16)  # the default's U(±1/sqrt(fan_in)) bound; kaiming-normal's std is sqrt(6)x its std
  assert np.abs(np.asarray(bp["conv2"]["kernel"])).max() <= bound
  np.testing.assert_allclose(np.asarray(fa["conv2"]["kernel"]).std(), np.sqrt(2 / (9 * 16)), rtol=0.1)
  jax.tree.map(np.testing.assert_array_equal, fa["fc1"], bp["fc1"])  # the dense layers: as BP
