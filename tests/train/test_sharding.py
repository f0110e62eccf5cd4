"""Seeds trained in chunks equal one big vmap; the auto chunk respects a memory budget.

Every test here runs backprop segments of the same length (one epoch, `SPE` steps) of 5 seeds or chunks of them, so
the programs compiled for one test are read from the session's compilation cache by the next.
"""

import jax
import numpy as np

from leut.train import milestones, sharding
from tests.helpers import random_train_data, tiny_config

SEEDS = 5


def _params(workdir, config, data):
  _, trainer = milestones.build(config, "backprop", data)
  ck = milestones.checkpoints_for(workdir, "backprop")
  step, state = ck.restore_latest(trainer.abstract_state(config.seeds))
  ck.close()
  return step, jax.device_get(state.params)


def _trainer():
  config = tiny_config(seeds=SEEDS)
  _, trainer = milestones.build(config, "backprop", random_train_data())
  return trainer, config.data.train_subset // config.batch_size


def test_chunked_training_equals_one_vmap(tmp_path):
  data = random_train_data()
  results = {}
  for chunk in (SEEDS, 2):  # 5: one vmap; 2: chunks 2 + 2 + 1
    config = tiny_config(seeds=SEEDS, seed_chunk=chunk)
    milestones.train_rule(config, tmp_path / str(chunk), "backprop", data, progress=False)
    results[chunk] = _params(tmp_path / str(chunk), config, data)
  assert results[SEEDS][0] == results[2][0] == 6
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), results[SEEDS][1], results[2][1])


def test_run_chunked_matches_run_segment_and_metrics_stay_per_seed():
  trainer, spe = _trainer()
  keys = sharding.seed_keys(0, SEEDS)
  initial = lambda: sharding.reshard(trainer.init_all(keys), SEEDS)  # noqa: E731 - as train_rule starts
  whole, m_whole = trainer.run_segment(initial(), keys, spe)
  parts, m_parts = sharding.run_chunked(trainer.run_segment, initial(), keys, spe, 2)  # 2 + 2 + 1
  assert m_parts["loss"].shape == (SEEDS,)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), whole.params, parts.params)
  np.testing.assert_allclose(m_whole["loss"], m_parts["loss"], rtol=1e-5)


def test_auto_chunk_fits_the_budget():
  trainer, spe = _trainer()
  fn, shapes = trainer.run_segment, trainer.abstract_state
  need = {c: sharding.compiled_bytes(fn, shapes, c, spe) for c in (1, 2, SEEDS)}
  assert need[1] < need[2] < need[SEEDS]
  assert sharding.auto_seed_chunk(fn, shapes, SEEDS, n_steps=spe, budget_bytes=10 * need[SEEDS]) == SEEDS
  small = sharding.auto_seed_chunk(fn, shapes, SEEDS, n_steps=spe, budget_bytes=(need[2] + need[1]) // 2 + 1)
  assert 1 <= small < SEEDS
  assert sharding.compiled_bytes(fn, shapes, small, spe) <= need[2]
  assert sharding.plan_seed_chunk(3, fn, shapes, SEEDS, spe) == 3
