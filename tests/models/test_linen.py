"""A user's flax.linen module as a leut Network: features by name, BatchNorm state, feedback alignment and DFA by
interception (against hand-derived updates), refusals, and `leut run` end to end on the example config."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from leut import cli, rules
from leut.models import linen
from leut.rules import backprop, base
from leut.rules import direct_feedback_alignment as dfa_mod
from leut.rules import feedback_alignment as fa_mod
from tests.helpers import PLUMBING_RUN
from tests.test_end_to_end import TINY


class ConvNet(nn.Module):
  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.Conv(4, (3, 3), use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
    self.sow("intermediates", "block", x)
    x = nn.relu(nn.Dense(6)(x.mean(axis=(1, 2))))
    return nn.Dense(10)(x)


class MLP(nn.Module):
  """x → relu(x W1) → relu(h W2) → h2 W3 (no biases): hand-derivable FA and DFA updates."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    del train
    x = x.reshape(x.shape[0], -1)
    h1 = nn.relu(nn.Dense(5, use_bias=False, name="l1")(x))
    h2 = nn.relu(nn.Dense(4, use_bias=False, name="l2")(h1))
    return nn.Dense(10, use_bias=False, name="l3")(h2)


CONV_NET = linen.network(ConvNet(), ("block", "Conv_0", "Dense_0"))
MLP_NET = linen.network(MLP(), ("l1", "l2"))


def _batch(n=4, side=32):
  x = jax.random.normal(jax.random.key(1), (n, side, side, 3))
  return base.Batch(x, jnp.array([0, 3, 3, 9][:n], jnp.int32))


def test_features_by_sow_name_and_module_path_and_batchnorm_state():
  params, state = CONV_NET.init(jax.random.key(0))
  assert set(state) == {"batch_stats"}
  assert [layer.name for layer in CONV_NET.linear_layers] == ["Conv_0", "Dense_0", "Dense_1"]
  x = jax.random.normal(jax.random.key(1), (3, 32, 32, 3))
  feats = CONV_NET.features(params, state, x)
  assert {k: v.shape for k, v in feats.items()} == {"block": (3, 4), "Conv_0": (3, 4), "Dense_0": (3, 6)}
  alone = CONV_NET.features(params, state, x[:1])  # evaluation uses running statistics: per stimulus
  np.testing.assert_allclose(alone["block"][0], feats["block"][0], rtol=1e-5, atol=1e-6)
  _, _, new_state = CONV_NET.apply(params, state, x, train=True)
  assert not np.allclose(new_state["batch_stats"]["BatchNorm_0"]["mean"], state["batch_stats"]["BatchNorm_0"]["mean"])
  with pytest.raises(ValueError, match="'nope'.*not among"):
    linen.network(ConvNet(), ("nope",)).features(params, state, x)


def test_fa_on_a_flax_model_with_feedback_equal_to_the_weights_is_backprop():
  params, state = CONV_NET.init(jax.random.key(0))
  batch, key = _batch(side=32), jax.random.key(3)
  fa = fa_mod.feedback_alignment(CONV_NET, layers="all", dropout_rate=0.0)
  feedback = {layer.name: params[layer.path[0]]["kernel"] for layer in CONV_NET.linear_layers}
  got = fa.update(params, state, fa_mod.FeedbackAlignmentState(feedback), batch, key)
  want = backprop.backprop(CONV_NET, dropout_rate=0.0).update(params, state, base.EmptyState(), batch, key)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), got.grads, want.grads)


def _mlp_forward(params, batch):
  w1, w2, w3 = (params[n]["kernel"] for n in ("l1", "l2", "l3"))
  x = batch.images.reshape(batch.images.shape[0], -1)
  a1 = x @ w1
  h1 = np.maximum(a1, 0)
  a2 = h1 @ w2
  h2 = np.maximum(a2, 0)
  logits = h2 @ w3
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  e = (p - np.eye(10)[np.asarray(batch.labels)]) / x.shape[0]  # ∂CE/∂logits
  return x, a1, h1, a2, h2, e


def test_fa_on_a_flax_mlp_matches_the_hand_derivation():
  """δ_2 = (e B3ᵀ) ⊙ relu'(a2), δ_1 = (δ_2 B2ᵀ) ⊙ relu'(a1); ΔW_l = −h_{l-1}ᵀ δ_l (Lillicrap et al. 2016)."""
  params, state = MLP_NET.init(jax.random.key(0))
  batch = _batch()
  rule = fa_mod.feedback_alignment(MLP_NET, layers="all", dropout_rate=0.0)
  rule_state = rule.init(jax.random.key(4), params)
  got = rule.update(params, state, rule_state, batch, jax.random.key(3)).grads
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  b = {k: np.asarray(v, np.float64) for k, v in rule_state.feedback.items()}
  x, a1, h1, a2, h2, e = _mlp_forward(p, batch)
  d2 = (e @ b["l3"].T) * (a2 > 0)
  d1 = (d2 @ b["l2"].T) * (a1 > 0)
  for name, want in (("l3", h2.T @ e), ("l2", h1.T @ d2), ("l1", x.T @ d1)):
    np.testing.assert_allclose(got[name]["kernel"], want, rtol=1e-4, atol=1e-7, err_msg=name)
  true_d1 = ((e @ p["l3"]["kernel"].T) * (a2 > 0) @ p["l2"]["kernel"].T) * (a1 > 0)
  assert not np.allclose(got["l1"]["kernel"], x.T @ true_d1, rtol=1e-2)


def test_dfa_on_a_flax_mlp_matches_the_hand_derivation():
  """Nøkland (2016): δ_l = (e B_l) ⊙ relu'(a_l) for the hidden layers, straight from the output error; the
  readout's gradient is exact."""
  params, state = MLP_NET.init(jax.random.key(0))
  batch = _batch()
  rule = dfa_mod.direct_feedback_alignment(MLP_NET)
  rule_state = rule.init(jax.random.key(4), params)
  assert {k: v.shape for k, v in rule_state.feedback.items()} == {"l2": (10, 5), "l3": (10, 4)}  # K x width
  got = rule.update(params, state, rule_state, batch, jax.random.key(3)).grads
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  x, a1, h1, a2, h2, e = _mlp_forward(p, batch)
  b = {k: np.asarray(v, np.float64) for k, v in rule_state.feedback.items()}
  # the hidden stage read by l2 is h1 (fed e·B['l2']), the one read by l3 is h2 (fed e·B['l3'])
  for name, want in (
    ("l3", h2.T @ e),
    ("l2", h1.T @ ((e @ b["l3"]) * (a2 > 0))),
    ("l1", x.T @ ((e @ b["l2"]) * (a1 > 0))),
  ):
    np.testing.assert_allclose(got[name]["kernel"], want, rtol=1e-4, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", ["predictive_coding", "stdp", "predictive_coding_published", "stdp_published"])
def test_block_rules_refuse_a_flax_model_with_a_clear_error(name):
  with pytest.raises(ValueError, match="flax|protocol CNN"):
    rules.make(name, steps_per_epoch=1, epochs=1, network=CONV_NET)


def test_flax_example_runs_end_to_end_and_is_scored_by_layer_name(tmp_path, synthetic_dir):
  wd = tmp_path / "flax"
  rc = cli.main(
    ["run", "experiments/synthetic_flax_model.py", "--workdir", str(wd), f"--config.data.synthetic_dir={synthetic_dir}",
     "--config.model.module_kwargs={'widths': (4, 8), 'hidden': 8}", *TINY, "--config.epochs=1",
     "--config.milestones=0,1", *PLUMBING_RUN]
  )  # fmt: skip
  assert rc == 0
  rsa = pd.read_csv(wd / "results" / "rsa.csv")
  conditions = ["untrained", "backprop", "feedback_alignment", "direct_feedback_alignment"]
  assert sorted(set(rsa.rule)) == sorted(conditions)
  for rule in conditions:
    assert set(rsa[rsa.rule == rule].layer) == {"block1", "block2", "hidden"}
  assert rsa.rho.notna().all()
  moved = pd.read_csv(wd / "results" / "weights.csv")
  assert (moved[(moved.rule == "feedback_alignment") & (moved.epoch == 1)].rel_displacement > 0).all()
  assert (wd / "summary.md").is_file()
