"""The protocol CNN: evaluation features are per-stimulus (batch-independent), layers match PyTorch semantics."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from leut.models import cnn, layers, network


def _trained_looking_state(key):
  """A network whose BatchNorm running stats and affine params are far from their identity init."""
  params, state = cnn.init(key)
  k = jax.random.split(key, 6)
  for i, bn in enumerate(("bn1", "bn2", "bn3")):
    c = state[bn]["mean"].shape[0]
    state[bn] = {"mean": jax.random.normal(k[i], (c,)), "var": 0.5 + jax.random.uniform(k[i + 3], (c,))}
    params[bn] = {"scale": 1.0 + 0.3 * jax.random.normal(k[i], (c,)), "bias": 0.1 * jnp.ones((c,))}
  return params, state


def test_eval_features_do_not_depend_on_batch_companions_or_size():
  params, state = _trained_looking_state(jax.random.PRNGKey(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 64, 64, 3))
  other = 5.0 + 3.0 * jax.random.normal(jax.random.PRNGKey(2), (6, 64, 64, 3))  # very different statistics
  features = jax.jit(cnn.features)
  alone = features(params, state, x[:1])
  with_batch = features(params, state, x)
  with_strangers = features(params, state, jnp.concatenate([x[:1], other]))
  for layer in cnn.FEATURE_LAYERS:
    np.testing.assert_allclose(alone[layer][0], with_batch[layer][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alone[layer][0], with_strangers[layer][0], rtol=1e-5, atol=1e-5)


def test_training_mode_uses_batch_statistics_and_evaluation_does_not():
  params, state = _trained_looking_state(jax.random.PRNGKey(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 32, 32, 3))
  _, _, new_state = cnn.apply(params, state, x, train=True)
  _, _, same_state = cnn.apply(params, state, x, train=False)
  assert not np.allclose(new_state["bn1"]["mean"], state["bn1"]["mean"])
  for bn in ("bn1", "bn2", "bn3"):
    np.testing.assert_array_equal(same_state[bn]["mean"], state[bn]["mean"])


def test_conv3x3_equals_scipy_cross_correlation():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 7, 9, 3))
  w = rng.normal(size=(3, 3, 3, 4))
  got = np.asarray(layers.conv3x3(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)))
  want = np.zeros((2, 7, 9, 4))
  for n in range(2):
    for o in range(4):
      for c in range(3):
        want[n, :, :, o] += signal.correlate2d(x[n, :, :, c], w[:, :, c, o], mode="same", boundary="fill")
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed_loop", [True, False])
@pytest.mark.parametrize("shared_input", [False, True])
def test_conv3x3_vjp_per_seed_equals_float64_autodiff_of_im2col(shared_input, seed_loop, monkeypatch):
  """conv3x3 (hand-written VJP) under vmap over 3 seeds = float64 autodiff of the im2col conv, for per-seed inputs
  and for one input shared by every seed (evaluation stimuli): both through the CPU's one direct conv per seed and
  through the accelerators' one batched conv (run here by taking CPU off `SEED_LOOP_PLATFORMS`)."""
  rng = np.random.default_rng(2)
  x = rng.normal(size=(5, 6, 10, 3) if shared_input else (3, 5, 6, 10, 3))
  k, g = rng.normal(size=(3, 3, 3, 3, 4)), rng.normal(size=(3, 5, 6, 10, 4))
  in_axes = (None if shared_input else 0, 0, 0)

  def value_and_vjp(conv, dtype):
    def one(x_, k_, g_):
      y, pullback = jax.vjp(conv, x_, k_)
      return (y,) + pullback(g_)

    args = [jnp.asarray(a, dtype) for a in (x, k, g)]
    return jax.jit(jax.vmap(one, in_axes=in_axes))(*args)

  with jax.enable_x64(True):
    want = [np.asarray(w) for w in value_and_vjp(layers.conv3x3_im2col, jnp.float64)]
  monkeypatch.setattr(layers, "SEED_LOOP_PLATFORMS", ("cpu",) if seed_loop else ())
  got = value_and_vjp(layers.conv3x3, jnp.float32)
  for a, b in zip(got, want):
    np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
  args = (x.astype(np.float32), k.astype(np.float32))
  hlo = jax.jit(jax.vmap(layers.conv3x3, in_axes=in_axes[:2])).lower(*args).as_text()
  if seed_loop:
    assert hlo.count("stablehlo.convolution") == 3 and "group_count = 3" not in hlo  # one conv per seed
  else:
    assert hlo.count("stablehlo.convolution") == 1


def _convolutions(hlo: str) -> list[str]:
  return [line for line in hlo.splitlines() if "stablehlo.convolution" in line]


def test_one_traced_program_lowers_to_the_per_seed_loop_on_cpu_and_one_batched_conv_on_accelerators():
  """The per-seed choice is made at lowering, not at tracing: one trace of a 3-seed training gradient lowers to
  per-seed ordinary convolutions for CPU and to grouped (batched) ones for CUDA and TPU."""
  keys = jax.random.split(jax.random.PRNGKey(2), 3)
  params, state = jax.vmap(_trained_looking_state)(keys)
  x = jax.random.normal(jax.random.PRNGKey(3), (3, 8, 32, 32, 3))

  def f(p, s, x):
    logits, _, _ = cnn.apply(p, s, x, train=True)
    return jnp.sum(jnp.sin(logits))

  traced = jax.jit(jax.vmap(jax.grad(f))).trace(params, state, x)
  on_cpu = _convolutions(traced.lower(lowering_platforms=("cpu",)).as_text())
  assert on_cpu and not any("group_count = 3" in line for line in on_cpu)
  for platform in ("cuda", "tpu"):
    on_accelerator = _convolutions(traced.lower(lowering_platforms=(platform,)).as_text())
    assert len(on_accelerator) < len(on_cpu) / 2
    assert all("group_count = 3" in line for line in on_accelerator)  # 3 seeds as one grouped convolution


def test_batch_norm_train_matches_pytorch_formulas():
  rng = np.random.default_rng(1)
  x = rng.normal(2.0, 3.0, size=(4, 5, 5, 3))
  mean0, var0 = rng.normal(size=3), 1 + rng.uniform(size=3)
  y, (m, v) = layers.batch_norm_train(
    jnp.asarray(x, jnp.float32),
    jnp.ones(3),
    jnp.zeros(3),
    jnp.asarray(mean0, jnp.float32),
    jnp.asarray(var0, jnp.float32),
  )
  flat = x.reshape(-1, 3)
  np.testing.assert_allclose(y, (x - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(m, 0.9 * mean0 + 0.1 * flat.mean(0), rtol=1e-5)
  np.testing.assert_allclose(v, 0.9 * var0 + 0.1 * flat.var(0, ddof=1), rtol=1e-5)


@pytest.mark.parametrize("px,window", [(32, 1), (64, 2), (224, 7)])
def test_fc1_reads_a_4x4_adaptive_pool_at_every_resolution(px, window):
  x = jnp.arange(2 * (px // 8) ** 2 * 3, dtype=jnp.float32).reshape(2, px // 8, px // 8, 3)
  pooled = np.asarray(layers.adaptive_avg_pool(x, 4))
  ref = np.asarray(x).reshape(2, 4, window, 4, window, 3).mean(axis=(2, 4))
  np.testing.assert_allclose(pooled, ref)
  params, state = cnn.init(jax.random.PRNGKey(0))
  feats = cnn.features(params, state, jnp.zeros((1, px, px, 3)))
  assert feats["fc1"].shape == (1, 512) and feats["conv1"].shape == (1, 32)


def test_same_key_gives_identical_weights():
  a, _ = cnn.init(jax.random.PRNGKey(3))
  b, _ = cnn.init(jax.random.PRNGKey(3))
  jax.tree.map(np.testing.assert_array_equal, a, b)
  bound = 1 / np.sqrt(27)
  assert np.abs(np.asarray(a["conv1"]["kernel"])).max() <= bound


def _block_reference(x, kernel, scale, bias, feedback=None, pool=True):
  """Pool(ReLU(BN_batch(conv(x)))) from the unfused layers, with `lax.conv_general_dilated` at full precision; with
  `feedback`, a conv whose input gradient is the transpose of the convolution with `feedback` (written with
  `jax.linear_transpose`, independently of leut's hand-written adjoints)."""
  conv = functools.partial(
    jax.lax.conv_general_dilated,
    window_strides=(1, 1),
    padding=((1, 1), (1, 1)),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    precision=jax.lax.Precision.HIGHEST,
  )
  if feedback is None:
    z = conv(x, kernel)
  else:

    @jax.custom_vjp
    def fa_conv(x_, k_, b_):
      return conv(x_, k_)

    def fwd(x_, k_, b_):
      return conv(x_, k_), (x_, k_, b_)

    def bwd(res, g):
      x_, k_, b_ = res
      (gx,) = jax.linear_transpose(lambda v: conv(v, b_), x_)(g)
      (gk,) = jax.linear_transpose(lambda w: conv(x_, w), k_)(g)
      return gx, gk, jnp.zeros_like(b_)

    fa_conv.defvjp(fwd, bwd)
    z = fa_conv(x, kernel, feedback)
  c = z.shape[-1]
  y, _ = layers.batch_norm_train(z, scale, bias, jnp.zeros((c,), z.dtype), jnp.ones((c,), z.dtype))
  out = jax.nn.relu(y)
  return (layers.max_pool2(out) if pool else out), z.mean(axis=(0, 1, 2)), z.var(axis=(0, 1, 2))


def _block_inputs(key, n_seeds, side, c_in, c_out, pool=True):
  k = jax.random.split(key, 6)
  x = jax.random.normal(k[0], (n_seeds, 6, side, side, c_in))
  kernel = jax.random.normal(k[1], (n_seeds, 3, 3, c_in, c_out)) / np.sqrt(9 * c_in)
  scale = 1.0 + 0.3 * jax.random.normal(k[2], (n_seeds, c_out))
  bias = 0.2 * jax.random.normal(k[3], (n_seeds, c_out))
  out_side = side // 2 if pool else side
  weight = jax.random.normal(k[4], (n_seeds, 6, out_side, out_side, c_out))  # a loss Σ w·out: every output counts
  feedback = jax.random.normal(k[5], (n_seeds, 3, 3, c_in, c_out)) / np.sqrt(9 * c_in)
  return x, kernel, scale, bias, weight, feedback


def _rel_err(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return np.abs(got - want).max() / np.abs(want).max()


@pytest.mark.parametrize(
  "side,c_in,c_out,pool,with_feedback",
  [(16, 3, 8, True, False), (8, 16, 32, True, False), (7, 5, 6, True, False), (8, 5, 6, False, False),
   (8, 5, 6, True, True), (7, 4, 6, False, True)],
)  # fmt: skip
def test_fused_block_matches_float64_reference_values_and_gradients(side, c_in, c_out, pool, with_feedback):
  """conv_bn_relu_pool (float32, per-seed custom_vmap, hand-written VJP) = the float64 unfused block, vmapped or
  not; with or without the pool, and with a feedback kernel (feedback alignment: ∂x through B, the rest exact)."""
  x, kernel, scale, bias, weight, feedback = _block_inputs(jax.random.PRNGKey(side), 3, side, c_in, c_out, pool)
  fb = (feedback,) if with_feedback else ()

  def fused_one(x_, k_, s_, b_, *f_):
    return layers.conv_bn_relu_pool(x_, k_, s_, b_, *f_, pool=pool)

  def loss(block, *f):
    return lambda *a: jnp.sum(block(*a, *f)[0] * weight)

  fused = jax.vmap(fused_one)
  got = jax.jit(fused)(x, kernel, scale, bias, *fb)
  got_grads = jax.jit(jax.grad(loss(fused, *fb), argnums=(0, 1, 2, 3)))(x, kernel, scale, bias)
  # one network, not vmapped (each compiled as one program: op-by-op dispatch would compile every op on its own)
  single = jax.jit(fused_one)(x[1], kernel[1], scale[1], bias[1], *(f[1] for f in fb))
  single_loss = lambda *a: jnp.sum(fused_one(*a, *(f[1] for f in fb))[0] * weight[1])  # noqa: E731
  single_grads = jax.jit(jax.grad(single_loss, argnums=(0, 1, 2, 3)))(x[1], kernel[1], scale[1], bias[1])
  with jax.enable_x64(True):
    args64 = [jnp.asarray(np.asarray(a), jnp.float64) for a in (x, kernel, scale, bias, weight, feedback)]
    weight = args64[4]
    ref = jax.vmap(lambda *a: _block_reference(*a[:4], a[4] if with_feedback else None, pool))
    want = [np.asarray(v) for v in jax.jit(ref)(*args64[:4], args64[5])]
    ref_loss = lambda *a: jnp.sum(ref(*a, args64[5])[0] * weight)  # noqa: E731
    want_grads = [np.asarray(g) for g in jax.jit(jax.grad(ref_loss, argnums=(0, 1, 2, 3)))(*args64[:4])]
  for g, w in zip(got, want):
    assert _rel_err(g, w) < 2e-6
  for g, w in zip(got_grads, want_grads):
    assert _rel_err(g, w) < 2e-5
  for g, w in zip(single, want):
    assert _rel_err(g, w[1]) < 2e-6
  for g, w in zip(single_grads, want_grads):
    assert _rel_err(g, w[1]) < 2e-5
  if with_feedback:  # and B really replaced W: the input gradient differs from the true one
    true_gx = jax.jit(jax.grad(loss(fused), argnums=0))(x, kernel, scale, bias)
    assert _rel_err(got_grads[0], true_gx) > 0.1


def test_fused_block_splits_the_gradient_of_tied_maxima_like_autodiff():
  """Equal maxima in a pool window (and all-negative windows) get the gradient autodiff gives them."""
  x = jnp.tile(jnp.asarray([[1.0, 1.0], [1.0, -2.0]]), (2, 2)).reshape(1, 4, 4, 1)  # ties in every window
  x = jnp.concatenate([x, -x], axis=0)  # the negated image's windows are tied at ReLU's zero
  kernel = jnp.zeros((3, 3, 1, 1)).at[1, 1].set(1.0)  # identity convolution
  args = (x, kernel, jnp.ones((1,)), jnp.full((1,), 0.3))

  def loss(block):
    return lambda *a: jnp.sum(block(*a)[0] * jnp.arange(1.0, 9.0).reshape(2, 2, 2, 1))

  got = jax.grad(loss(layers.conv_bn_relu_pool), argnums=(0, 1, 2, 3))(*args)
  want = jax.grad(loss(_block_reference), argnums=(0, 1, 2, 3))(*args)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * np.abs(w).max())


def _unfused_apply(net, params, state, x, feedback):
  """The training forward block by block on the unfused layers (`taps=True` materialises every block's map)."""
  h, new_state = x, dict(state)
  for block in net.blocks:
    res = block.apply(params, state, h, train=True, feedback=feedback, taps=True)
    h, new_state = res.out, network.with_batch_stats(new_state, res.batch_stats)
  return net.readout(params, net.head(params, h, feedback=feedback), feedback=feedback), new_state


@pytest.mark.parametrize("with_feedback", [False, True])
def test_training_blocks_take_the_fused_path_with_unchanged_values_state_and_gradients(with_feedback):
  """Network.apply(train=True) (fused blocks) = the unfused layers, for 3 seeds vmapped: logits, stats, grads; with
  feedback kernels too (feedback alignment stays on the fused path). Without feedback also = the im2col blocks."""
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  params, state = jax.vmap(_trained_looking_state)(keys)
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 8, 32, 32, 3))
  net = cnn.network()
  feedback = None
  if with_feedback:
    feedback = {n: 0.1 * jax.random.normal(jax.random.PRNGKey(i), params[n]["kernel"].shape) for i, n in enumerate(
      cnn.CONV_LAYERS + ("fc1",))}  # fmt: skip

  def grads(forward):
    def f(p, s, x, b):
      logits, new_state = forward(p, s, x, b)
      return jnp.sum(jnp.sin(logits)), (logits, new_state)

    return jax.jit(jax.vmap(jax.grad(f, has_aux=True)))(params, state, x, feedback)

  g_fused, (l_fused, s_fused) = grads(lambda p, s, x, b: net.apply(p, s, x, train=True, feedback=b)[::2])
  references = [lambda p, s, x, b: _unfused_apply(net, p, s, x, b)]
  if not with_feedback:
    im2col = cnn.network(conv_impl=layers.conv3x3_im2col)
    references.append(lambda p, s, x, b: im2col.apply(p, s, x, train=True)[::2])
  for reference in references:
    g_ref, (l_ref, s_ref) = grads(reference)
    assert _rel_err(l_fused, l_ref) < 1e-5
    for a, b in zip(jax.tree.leaves((s_fused, g_fused)), jax.tree.leaves((s_ref, g_ref))):
      assert _rel_err(a, b) < 1e-4
  one = jax.tree.map(lambda v: v[0], (params, state))
  fb_one = None if feedback is None else jax.tree.map(lambda v: v[0], feedback)
  jaxpr = str(jax.make_jaxpr(lambda p: net.apply(p, one[1], x[0], train=True, feedback=fb_one))(one[0]))
  assert jaxpr.count("custom_vjp_call") == 3 + (1 if with_feedback else 0)  # 3 fused blocks (+ fc1's feedback)


def test_fused_block_vmaps_as_one_batched_program_off_cpu(monkeypatch):
  """The accelerators' path (one batched vmap, run here by taking CPU off `SEED_LOOP_PLATFORMS`) gives the CPU's
  per-seed-loop values and gradients."""
  keys = jax.random.split(jax.random.PRNGKey(2), 3)
  params, state = jax.vmap(_trained_looking_state)(keys)
  x = jax.random.normal(jax.random.PRNGKey(3), (3, 8, 32, 32, 3))

  def f(p, s, x):
    logits, _, _ = cnn.apply(p, s, x, train=True)
    return jnp.sum(jnp.sin(logits))

  grad = lambda: jax.jit(jax.vmap(jax.value_and_grad(f)))(params, state, x)  # noqa: E731  (traced afresh)
  loop_val, loop_grad = grad()
  monkeypatch.setattr(layers, "SEED_LOOP_PLATFORMS", ())
  hlo = jax.jit(jax.vmap(f)).lower(params, state, x).as_text()
  assert "feature_group_count = 3" in hlo or "batch_group_count = 3" in hlo  # one grouped conv for the 3 seeds
  vmap_val, vmap_grad = grad()
  assert _rel_err(vmap_val, loop_val) < 1e-5
  for a, b in zip(jax.tree.leaves(vmap_grad), jax.tree.leaves(loop_grad)):
    assert _rel_err(a, b) < 1e-4


def test_network_compiler_options_leave_convolutions_to_xla_and_values_unchanged():
  """`network_jit` (the trainer's and feature extractor's jit): same values and gradients as plain `jax.jit`, and,
  where this XLA has the option, no convolution handed to the YNNPACK library."""
  from leut.xla_cpu import network_jit, network_library_fusion

  options = network_library_fusion()
  assert options in ({}, {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE"})
  params, state = _trained_looking_state(jax.random.PRNGKey(4))
  x = jax.random.normal(jax.random.PRNGKey(5), (4, 32, 32, 3))

  def loss(p):
    logits, _, _ = cnn.apply(p, state, x, train=True)
    return jnp.sum(jnp.sin(logits))

  got, want = network_jit(jax.value_and_grad(loss))(params), jax.jit(jax.value_and_grad(loss))(params)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert _rel_err(a, b) < 1e-5
  if options:
    hlo = network_jit(layers.conv3x3_direct).lower(x, params["conv1"]["kernel"]).compile().as_text()
    assert "convolution(" in hlo and "__ynn_fusion" not in hlo
