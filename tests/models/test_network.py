"""The architecture axis: networks built from `config.model` (CNNs of any depth, the residual network), their
pooling schedule, feature layers, parameter trees and per-rule initialisation options."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from leut import models
from leut.defaults import protocol_config
from leut.models import cnn, resnet


@pytest.mark.parametrize(
  "n,pools", [(1, (1,)), (2, (1, 2)), (3, (1, 2, 3)), (4, (2, 3, 4)), (5, (2, 4, 5)), (6, (2, 4, 6)), (8, (3, 6, 8))]
)
def test_default_pooling_is_at_most_three_evenly_spaced_pools_ending_at_the_last_block(n, pools):
  assert cnn.default_pool_after(n) == pools


def test_pool_schedule_errors_say_what_to_fix():
  with pytest.raises(ValueError, match="at most 3"):
    cnn.network((4, 4, 4, 4), 8, pool_after=(1, 2, 3, 4))
  with pytest.raises(ValueError, match="between 1 and 2"):
    cnn.network((4, 4), 8, pool_after=(3,))
  with pytest.raises(ValueError, match="at least one conv block"):
    cnn.network((), 8)


@pytest.mark.parametrize("depth", [1, 5, 8])
def test_cnn_of_any_depth_trains_at_32px_and_reads_out_at_every_multiple_of_32(depth):
  net = cnn.network((4,) * (depth - 1) + (6,), 8)
  params, state = net.init(jax.random.key(0))
  assert params["fc1"]["kernel"].shape == (6 * 16, 8)  # fc1 reads a 4x4 adaptive pool of the last block
  logits, acts, _ = net.apply(params, state, jnp.zeros((2, 32, 32, 3)), train=True)
  side = 32 // 2 ** min(depth, 3)
  assert logits.shape == (2, 10) and acts[f"conv{depth}"].shape == (2, side, side, 6)
  for px in (32, 64, 96):
    feats = net.features(params, state, jnp.zeros((1, px, px, 3)))
    assert list(feats) == [f"conv{i}" for i in range(1, depth + 1)] + ["fc1"] == list(net.feature_layers)
    assert feats["fc1"].shape == (1, 8) and feats[f"conv{depth}"].shape == (1, 6)


def test_protocol_cnn_keeps_its_parameter_tree_and_initialisation():
  """conv1..3 {kernel}, bn1..3 {scale, bias}, fc1, fc2 {kernel, bias}; model state bnK {mean, var}; the same key
  gives the same weights as `cnn.init`, PyTorch's default bounds."""
  params, state = models.build(protocol_config().model).init(jax.random.key(3))
  shapes = jax.tree.map(lambda a: a.shape, params)
  assert shapes == {
    "conv1": {"kernel": (3, 3, 3, 32)},
    "conv2": {"kernel": (3, 3, 32, 64)},
    "conv3": {"kernel": (3, 3, 64, 128)},
    "bn1": {"scale": (32,), "bias": (32,)},
    "bn2": {"scale": (64,), "bias": (64,)},
    "bn3": {"scale": (128,), "bias": (128,)},
    "fc1": {"kernel": (2048, 512), "bias": (512,)},
    "fc2": {"kernel": (512, 10), "bias": (10,)},
  }
  assert jax.tree.map(lambda a: a.shape, state) == {f"bn{i}": {"mean": (c,), "var": (c,)} for i, c in
                                                    ((1, 32), (2, 64), (3, 128))}  # fmt: skip
  for name, fan_in in (("conv2", 9 * 32), ("fc1", 2048)):
    assert np.abs(np.asarray(params[name]["kernel"])).max() <= 1 / np.sqrt(fan_in)


@pytest.mark.parametrize(
  "overrides",
  [
    dict(widths=(32, 64, 128)),
    dict(widths=(16, 16, 32, 32, 64)),
    dict(widths=(8,)),
    dict(name="resnet", widths=(8, 16, 32), units_per_stage=2),
    dict(name="resnet", widths=(8,)),
  ],
)
def test_feature_layers_of_a_config_are_those_of_the_network_it_builds(overrides):
  model = protocol_config().model
  with model.unlocked():
    model.update(overrides)
  net = models.build(model)
  assert models.feature_layers(model) == net.feature_layers == tuple(b.name for b in net.blocks) + ("fc1",)
  assert models.build(model) is net  # one object per description: rules share compiled readouts


def test_unknown_model_name_is_refused_with_the_choices():
  with pytest.raises(ValueError, match="model.name='vgg'.*cnn, resnet, flax"):
    models.build(ml_collections.ConfigDict(dict(name="vgg", widths=(4,), fc_dim=8)))


def test_init_options_take_the_per_rule_override_and_refuse_unknown_fields():
  model = protocol_config().model
  assert models.init_options(model, "backprop") == {"conv_init": "torch_default", "conv_bias": False}
  with model.unlocked():
    model.init_per_rule = {"stdp": {"conv_init": "kaiming_normal"}, "fa": {"conv_bias": True, "seed": 3}}
  assert models.init_options(model, "stdp") == {"conv_init": "kaiming_normal", "conv_bias": False}
  assert models.init_options(model, "backprop") == {"conv_init": "torch_default", "conv_bias": False}
  with pytest.raises(ValueError, match=r"init_per_rule\['fa'\].*\['seed'\]"):
    models.init_options(model, "fa")


def test_kaiming_normal_and_conv_bias_initialisation():
  """N(0, 2/fan_in) kernels (the published FA/STDP) and a zero conv bias that BatchNorm cancels in training."""
  net = cnn.network((64, 64, 64), 16)
  params, state = net.init(jax.random.key(0), conv_init="kaiming_normal", conv_bias=True)
  w = np.asarray(params["conv2"]["kernel"]).ravel()
  np.testing.assert_allclose(w.std(), np.sqrt(2 / (9 * 64)), rtol=0.03)
  np.testing.assert_array_equal(params["conv2"]["bias"], np.zeros(64))
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  shifted = dict(params, conv1=dict(params["conv1"], bias=jnp.full((64,), 0.7)))

  def loss(p):
    logits, _, new_state = net.apply(p, state, x, train=True)
    return jnp.sum(jnp.sin(logits)), (logits, new_state)

  grad = jax.jit(jax.grad(loss, has_aux=True))  # one program for both calls
  (g, (logits, new_state)) = grad(shifted)
  (_, (logits0, state0)) = grad(params)
  np.testing.assert_allclose(logits, logits0, rtol=1e-4, atol=1e-5)  # BN removes the shift in training
  np.testing.assert_allclose(g["conv1"]["bias"], 0.0, atol=1e-5 * float(jnp.abs(g["conv1"]["kernel"]).max()))
  np.testing.assert_allclose(new_state["bn1"]["mean"] - state0["bn1"]["mean"], 0.07, rtol=1e-4)  # 0.1 x 0.7


def test_resnet_structure_depth_and_downsampling():
  net = resnet.network((4, 8, 16, 16, 16), 2, 8)
  assert net.feature_layers == ("conv1",) + tuple(f"res{u}" for u in range(1, 11)) + ("fc1",)
  assert [b.downsample for b in net.blocks] == [1, 1, 1, 2, 1, 2, 1, 2, 1, 1, 1]  # stages 2-4 halve, at most 3
  params, state = net.init(jax.random.key(0))
  assert params["res3_conv_skip"]["kernel"].shape == (1, 1, 4, 8) and "res2_conv_skip" not in params
  assert sum(p.endswith("conv_a") or p.endswith("conv_b") for p in params) + 1 == 2 * 10 + 1  # depth 2 + 2·5·2
  logits, acts, _ = net.apply(params, state, jnp.zeros((2, 32, 32, 3)), train=True)
  assert logits.shape == (2, 10) and acts["res10"].shape == (2, 4, 4, 16)
