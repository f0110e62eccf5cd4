"""Networks: defined once, reached by every learning rule, training and scoring through one interface, `Network`.

    net = leut.models.build(config.model)                  # 'cnn' (any depth), 'resnet', or 'flax' (your module)
    params, model_state = net.init(key)
    logits, acts, new_state = net.apply(params, model_state, x, train=True, dropout_key=k, dropout_rate=0.3)
    feats = net.features(params, model_state, x)            # evaluation mode, {layer: N x U}, net.feature_layers

leut's own networks are a stack of named blocks (`net.blocks`), then a head and a readout:

    h_0 = x,   h_l = block_l(h_{l-1})   (l = 1..L),   fc1 = ReLU(W_1 · flatten(AdaptiveAvgPool4(h_L)) + b_1),
    logits = W_2 · Dropout(fc1) + b_2

A block (`network.Block`) is a pure function `apply(params, norm_stats, x, *, train, feedback, taps)` plus the
names of what it owns: its parameters, its convolutions (`Conv`: kernel, BatchNorm), its channel counts and its
downsampling. The rules use only this:

  - backprop: autodiff of `net.apply`;
  - feedback alignment: `net.apply(..., feedback={linear layer: B})`, every listed conv/dense sends its error back
    through B instead of W, inside the fused per-seed block too (`layers.conv_bn_relu_pool`);
  - direct feedback alignment: `net.apply(..., detach=True)` stops the gradient at every stage's input;
  - predictive coding: f_l(r) = block_l.apply(params, BN*, r, train=False) (BN* = a frozen batch's statistics),
    the generative map predicts the block's input from its output, and ∂F/∂θ_l is the VJP of f_l;
  - STDP: `block.apply(..., taps=True)` gives each convolution's input (pre) and ReLU(BN(conv)) output (post).

Features (PROTOCOL §1.3): block outputs averaged over space, and fc1. Parameter trees of the protocol CNN are
`conv1..convN` {kernel}, `bn1..bnN` {scale, bias}, `fc1`, `fc2` {kernel, bias}; model state `bnK` {mean, var}.

Why leut's blocks are plain JAX and not flax modules: they are a handful of pure functions over a flat dict whose
speed comes from hand-written per-seed convolutions and a fused block VJP (`layers`); linen would wrap the same
calls, add a variables dict, and not change what XLA runs. A user's own model is a flax linen module
(`leut.models.linen`), for which backprop, FA and DFA work through method interception.
"""

from __future__ import annotations

from leut.models.network import Block, BlockOut, Conv, LinearLayer, Network  # noqa: F401

NAMES = ("cnn", "resnet", "flax")


def _field(model_config, name, default):
  return model_config[name] if name in model_config and model_config[name] is not None else default


def build(model_config) -> Network:
  """The `Network` that `config.model` describes (the same description gives the same object)."""
  name = _field(model_config, "name", "cnn")
  widths = tuple(int(w) for w in _field(model_config, "widths", (32, 64, 128)))
  fc_dim = int(_field(model_config, "fc_dim", 512))
  if name == "cnn":
    from leut.models import cnn

    pool_after = _field(model_config, "pool_after", None)
    return cnn.network(widths, fc_dim, pool_after=None if pool_after is None else tuple(pool_after))
  if name == "resnet":
    from leut.models import resnet

    return resnet.network(widths, int(_field(model_config, "units_per_stage", 1)), fc_dim)
  if name == "flax":
    kwargs = _tuples(dict(_field(model_config, "module_kwargs", {}) or {}))
    return _flax(str(_field(model_config, "module", "")), tuple(_field(model_config, "feature_layers", ())), kwargs)
  raise ValueError(f"model.name={name!r}: use one of {', '.join(NAMES)}")


_FLAX = {}


def _tuples(value):
  """Lists (as config.json gives back tuples) as tuples, at any depth; mappings as plain dicts."""
  if isinstance(value, (list, tuple)):
    return tuple(_tuples(v) for v in value)
  if hasattr(value, "items"):
    return {k: _tuples(v) for k, v in value.items()}
  return value


def _flax(spec: str, feature_layers: tuple, kwargs: dict) -> Network:
  key = (spec, feature_layers, repr(sorted(kwargs.items())))
  if key not in _FLAX:
    from leut.models import linen

    _FLAX[key] = linen.network(linen.load_module(spec, kwargs), feature_layers)
  return _FLAX[key]


def feature_layers(model_config) -> tuple[str, ...]:
  """The scored layers of `config.model` in depth order, the readout-side one last (without building it)."""
  name = _field(model_config, "name", "cnn")
  widths = tuple(_field(model_config, "widths", (32, 64, 128)))
  if name == "cnn":
    return tuple(f"conv{i}" for i in range(1, len(widths) + 1)) + ("fc1",)
  if name == "resnet":
    units = len(widths) * int(_field(model_config, "units_per_stage", 1))
    return ("conv1",) + tuple(f"res{u}" for u in range(1, units + 1)) + ("fc1",)
  if name == "flax":
    return tuple(_field(model_config, "feature_layers", ()))
  raise ValueError(f"model.name={name!r}: use one of {', '.join(NAMES)}")


def init_options(model_config, rule_name: str) -> dict:
  """`net.init` keyword arguments for `rule_name`: `model.init_per_rule[rule]` over `model.conv_init`/`conv_bias`.

  One shared initialisation (the default) makes the untrained network every rule's epoch 0; with per-rule
  initialisations it is the epoch 0 only of the rules that share its initialisation.
  """
  options = {
    "conv_init": str(_field(model_config, "conv_init", "torch_default")),
    "conv_bias": bool(_field(model_config, "conv_bias", False)),
  }
  per_rule = dict(_field(model_config, "init_per_rule", {}) or {})
  override = dict(per_rule.get(rule_name, {}) or {})
  unknown = set(override) - set(options)
  if unknown:
    raise ValueError(
      f"model.init_per_rule[{rule_name!r}]: unknown field(s) {sorted(unknown)}; use 'conv_init' and/or 'conv_bias'"
    )
  options.update(override)
  return options
