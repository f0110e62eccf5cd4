"""A user's `flax.linen.Module` as a leut `Network`: trained by backprop, feedback alignment and direct feedback
alignment, scored against the brain by name from its intermediates.

Why linen: `module.apply(variables, x)` is a pure function of a dict of arrays, so a linen model vmaps over seeds,
jits, scans over steps and checkpoints exactly like leut's own parameter dicts; nnx modules are stateful objects
that would need `nnx.split`/`nnx.merge` around every one of those transformations.

The module's contract:
  - `__call__(self, x, *, train: bool)` returns logits (N x classes) for images N x H x W x 3;
  - BatchNorm (if any) keeps its statistics in the 'batch_stats' collection with `use_running_average=not train`
    (leut's model_state; updated in training, read-only in evaluation);
  - dropout (if any) is the module's own `nn.Dropout(deterministic=not train)`, fed the rule's dropout key as the
    'dropout' rng (the rules' `dropout_rate` applies only to leut's own networks);
  - the layers to score are named in `model.feature_layers`: module paths ('Conv_0', 'Block_1/Dense_0'; the
    module's output) or `self.sow('intermediates', name, value)` names. Maps are averaged over space.

How the rules reach it: `nn.intercept_methods` on every `nn.Dense` and `nn.Conv` call. Feedback alignment sends
the error to a layer's input through a fixed B (keyed by the layer's module path, shaped like its kernel) instead
of its kernel: ∂x = J_B(x)ᵀ δ with J_B the layer's own op with kernel B, and ∂W exact given δ. Direct feedback
alignment stops the gradient at every linear layer's input and returns those inputs (all but the first, which
reads the image) as the hidden stages that receive the projected output error. Predictive coding and STDP need
leut's blocks and refuse a flax model.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp

from leut.models.network import LinearLayer, Network, pooled_features

LINEAR_MODULES = (nn.Dense, nn.Conv)


def load_module(spec: str, kwargs: Mapping | None = None) -> nn.Module:
  """`'path/to/file.py:Class'` or `'package.module:Class'` instantiated with `kwargs`."""
  where, sep, attr = str(spec).rpartition(":")
  if not sep or not where or not attr:
    raise ValueError(f"model.module={spec!r}: give 'path/to/file.py:ClassName' or 'package.module:ClassName'")
  if where.endswith(".py"):
    if not Path(where).is_file():
      raise FileNotFoundError(f"model.module={spec!r}: file {where!r} not found (paths are relative to the cwd)")
    loader_spec = importlib.util.spec_from_file_location(f"leut_user_model_{Path(where).stem}", where)
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
  else:
    module = importlib.import_module(where)
  cls = getattr(module, attr, None)
  if cls is None:
    raise ValueError(f"model.module={spec!r}: {where} defines no {attr!r}")
  instance = cls(**dict(kwargs or {}))
  if not isinstance(instance, nn.Module):
    raise TypeError(f"model.module={spec!r}: {attr} is not a flax.linen.Module")
  return instance


def _path(module: nn.Module) -> str:
  return "/".join(module.path)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _feedback_linear(op, x, params, feedback_params):
  """`op(params, x)` (a linear layer) whose input gradient is the VJP of `op(feedback_params, ·)`."""
  return op(params, x)


def _feedback_linear_fwd(op, x, params, feedback_params):
  return op(params, x), (x, params, feedback_params)


def _feedback_linear_bwd(op, residuals, delta):
  x, params, feedback_params = residuals
  (g_params,) = jax.vjp(lambda p: op(p, x), params)[1](delta)
  (g_x,) = jax.vjp(lambda x_: op(feedback_params, x_), x)[1](delta)
  return g_x, g_params, jax.tree.map(jnp.zeros_like, feedback_params)


_feedback_linear.defvjp(_feedback_linear_fwd, _feedback_linear_bwd)


class _Interceptor:
  """Intercepts `nn.Dense` / `nn.Conv` calls: records linear layers, routes errors through feedback, detaches."""

  def __init__(self, feedback=None, hidden=None, record=None):
    self.feedback, self.hidden, self.record = feedback or {}, hidden, record
    self.calls, self.inside = 0, False

  def __call__(self, next_fun, args, kwargs, context):
    module = context.module
    if self.inside or context.method_name != "__call__" or not isinstance(module, LINEAR_MODULES):
      return next_fun(*args, **kwargs)
    path, x = _path(module), args[0]
    if self.record is not None:
      self.record.append(
        LinearLayer(path, "conv" if isinstance(module, nn.Conv) else "dense", (*module.path, "kernel"))
      )
    if self.hidden is not None:
      if self.calls:
        self.hidden[path] = x
      x = jax.lax.stop_gradient(x)
    self.calls += 1
    if path not in self.feedback:
      return next_fun(x, *args[1:], **kwargs)
    params = module.variables["params"]
    unbound = module.clone(parent=None, name=None)
    op = lambda p, x_: unbound.apply({"params": p}, x_)  # noqa: E731
    feedback_params = dict(jax.tree.map(jnp.zeros_like, params), kernel=self.feedback[path])
    self.inside = True  # the unbound copy's own call is not intercepted again
    try:
      return _feedback_linear(op, x, params, feedback_params)
    finally:
      self.inside = False


def _flatten(tree, prefix=()) -> dict[str, jax.Array]:
  """intermediates → {'path/to/name': value}: captured module outputs under '.../__call__', sown values by name."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, tuple):
      name = "/".join(prefix if key == "__call__" else (*prefix, key))
      if len(value) != 1:
        raise ValueError(f"model.feature_layers: {name!r} was recorded {len(value)} times in one forward pass")
      out[name] = value[0]
    elif isinstance(value, Mapping):
      out.update(_flatten(value, (*prefix, key)))
  return out


def network(module: nn.Module, feature_layers, *, image_shape=(32, 32, 3)) -> Network:
  """`module` as a `Network` whose features are `feature_layers` (see the module docstring for the contract)."""
  feature_layers = tuple(str(f) for f in feature_layers)
  if not feature_layers:
    raise ValueError(
      "model.feature_layers: name the intermediates of the flax model to score, in depth order, e.g. "
      "('Conv_0', 'Conv_1', 'Dense_0') (module paths) or sow('intermediates', name, x) names"
    )
  wanted = set(feature_layers)

  def init(key, *, conv_init: str = "torch_default", conv_bias: bool = False):
    if conv_init != "torch_default" or conv_bias:
      raise ValueError(
        "model.conv_init / conv_bias / init_per_rule: a flax model draws its parameters with its own initialisers; "
        "set them in the module"
      )
    variables = module.init({"params": key, "dropout": key}, jnp.zeros((1, *image_shape)), train=False)
    state = {k: v for k, v in variables.items() if k not in ("params", "intermediates")}
    return variables["params"], state

  def capture(mdl, method_name):
    return method_name == "__call__" and _path(mdl) in wanted

  def apply(params, model_state, x, *, train: bool, dropout_key=None, dropout_rate=0.0, feedback=None, detach=False):
    del dropout_rate  # the module's own nn.Dropout layers (see the module docstring)
    hidden = {} if detach else None
    mutable = (list(model_state) if train else []) + ["intermediates"]
    rngs = {"dropout": dropout_key} if train and dropout_key is not None else {}
    with nn.intercept_methods(_Interceptor(feedback, hidden)):
      logits, updated = module.apply(
        {"params": params, **model_state}, x, train=train, rngs=rngs, mutable=mutable, capture_intermediates=capture
      )
    new_state = {k: updated[k] for k in model_state} if train else model_state
    if detach:
      return logits, hidden, new_state
    found = _flatten(updated.get("intermediates", {}))
    missing = [f for f in feature_layers if f not in found]
    if missing:
      raise ValueError(
        f"model.feature_layers: {missing} not among the flax model's intermediates {sorted(found) or '(none)'}; "
        "name module paths or sow('intermediates', name, x) names"
      )
    return logits, {f: found[f] for f in feature_layers}, new_state

  def features(params, model_state, x):
    return pooled_features(apply(params, model_state, x, train=False)[1])

  record = []
  with nn.intercept_methods(_Interceptor(record=record)):
    jax.eval_shape(
      lambda k: module.init({"params": k, "dropout": k}, jnp.zeros((1, *image_shape)), train=False), jax.random.key(0)
    )
  linear = tuple(dict((layer.name, layer) for layer in record).values())
  return Network("flax", init, apply, features, feature_layers, linear)
