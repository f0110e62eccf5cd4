"""Seeds trained in chunks equal one big vmap; the auto chunk respects a memory budget."""

import jax
import numpy as np

from leut.train import milestones, sharding
from tests.helpers import random_train_data, tiny_config


def _params(workdir, config, data):
  _, trainer = milestones.build(config, "backprop", data)
  ck = milestones.checkpoints_for(workdir, "backprop")
  step, state = ck.restore_latest(trainer.abstract_state(config.seeds))
  ck.close()
  return step, jax.device_get(state.params)


def test_chunked_training_equals_one_vmap(tmp_path):
  data = random_train_data()
  results = {}
  for chunk in (5, 2):  # 5: one vmap; 2: chunks 2 + 2 + 1
    config = tiny_config(seeds=5, seed_chunk=chunk)
    milestones.train_rule(config, tmp_path / str(chunk), "backprop", data, progress=False)
    results[chunk] = _params(tmp_path / str(chunk), config, data)
  assert results[5][0] == results[2][0] == 6
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), results[5][1], results[2][1])


def test_run_chunked_matches_run_segment_and_metrics_stay_per_seed():
  config = tiny_config(seeds=4)
  _, trainer = milestones.build(config, "backprop", random_train_data())
  keys = sharding.seed_keys(0, 4)
  whole, m_whole = trainer.run_segment(trainer.init_all(keys), keys, 2)
  parts, m_parts = sharding.run_chunked(trainer.run_segment, trainer.init_all(keys), keys, 2, 2)
  assert m_parts["loss"].shape == (4,)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), whole.params, parts.params)
  np.testing.assert_allclose(m_whole["loss"], m_parts["loss"], rtol=1e-5)


def test_auto_chunk_fits_the_budget():
  config = tiny_config(seeds=8)
  _, trainer = milestones.build(config, "backprop", random_train_data())
  need = {c: sharding.compiled_bytes(trainer.run_segment, trainer.abstract_state, c) for c in (1, 2, 8)}
  assert need[1] < need[2] < need[8]
  assert sharding.auto_seed_chunk(trainer.run_segment, trainer.abstract_state, 8, budget_bytes=10 * need[8]) == 8
  small = sharding.auto_seed_chunk(
    trainer.run_segment, trainer.abstract_state, 8, budget_bytes=(need[2] + need[1]) // 2 + 1
  )
  assert 1 <= small < 8
  assert sharding.compiled_bytes(trainer.run_segment, trainer.abstract_state, small) <= need[2]
  assert sharding.plan_seed_chunk(3, trainer.run_segment, trainer.abstract_state, 8) == 3
