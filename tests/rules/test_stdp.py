"""STDP against its closed form: one pre/post pair gives ±A±·exp(−|Δt|/τ±); the correlation equals the
all-to-all pair sum; the published variant's sign inversion is visible; the bound keeps filter norms."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leut.models import layers
from leut.rules import stdp, stdp_published

WINDOW = stdp.STDPParams(a_plus=0.7, a_minus=0.4, tau_plus=5.0, tau_minus=8.0)


def _train(t_spike, length=12):
  s = np.zeros((length, 1, 1), np.float32)  # T x N x C
  s[t_spike, 0, 0] = 1.0
  return jnp.asarray(s)


@pytest.mark.parametrize("t_pre,t_post", [(2, 5), (0, 11), (6, 3), (9, 0), (4, 4)])
def test_single_pair_gives_the_closed_form(t_pre, t_post):
  dw = stdp.stdp_correlation(_train(t_pre), _train(t_post), WINDOW, patches=False)
  dt = t_post - t_pre
  if dt > 0:
    want = WINDOW.a_plus * np.exp(-dt / WINDOW.tau_plus)  # pre before post: potentiation
  elif dt < 0:
    want = -WINDOW.a_minus * np.exp(dt / WINDOW.tau_minus)  # post before pre: depression
  else:
    want = 0.0
  assert dw.shape == (1, 1)
  np.testing.assert_allclose(float(dw[0, 0]), want, rtol=1e-5, atol=1e-8)
  np.testing.assert_allclose(float(stdp.pair_kernel(dt, WINDOW)), want, rtol=1e-6, atol=1e-8)


def _closed_form_pair(dt):
  """K(Δt) written out: +A+ e^(−Δt/τ+) for Δt > 0, −A− e^(Δt/τ−) for Δt < 0, 0 at Δt = 0."""
  if dt > 0:
    return WINDOW.a_plus * np.exp(-dt / WINDOW.tau_plus)
  return -WINDOW.a_minus * np.exp(dt / WINDOW.tau_minus) if dt < 0 else 0.0


@pytest.mark.parametrize("n_images", [2, 20])  # 7 x 20 = 140 (time, image) entries: 4 chunks of 35
def test_correlation_equals_the_all_to_all_pair_sum_over_patches(n_images):
  k1, k2 = jax.random.split(jax.random.key(0))
  pre = jax.random.bernoulli(k1, 0.3, (7, n_images, 4, 4, 2)).astype(jnp.float32)  # T x N x H x W x C
  post = jax.random.bernoulli(k2, 0.3, (7, n_images, 4, 4, 3)).astype(jnp.float32)  # T x N x H x W x O
  got = stdp.stdp_correlation(pre, post, WINDOW)
  cols = np.asarray(jax.vmap(layers.patches3x3)(pre), np.float64)  # T x N x H x W x 9C
  post_np = np.asarray(post, np.float64)
  want = np.zeros((18, 3))
  for t_pre, t_post in itertools.product(range(7), range(7)):
    want += _closed_form_pair(t_post - t_pre) * np.einsum("nhwk,nhwo->ko", cols[t_pre], post_np[t_post])
  want /= n_images * 4 * 4  # mean over (n, h, w)
  assert got.shape == (3, 3, 2, 3)
  np.testing.assert_allclose(np.asarray(got).reshape(18, 3), want, rtol=1e-4, atol=1e-6)


def test_published_rule_depresses_when_pre_precedes_post():
  dt = jnp.array([1.0, 5.0, 10.0])
  np.testing.assert_allclose(
    stdp_published.published_kernel(dt), 0.003 * (np.exp(-np.asarray(dt) / 20.0) - 1.0), rtol=1e-5
  )
  assert np.all(np.asarray(stdp_published.published_kernel(dt)) < 0)  # pre first → depression (inverted)
  assert np.all(np.asarray(stdp_published.published_kernel(-dt)) > 0)  # post first → potentiation
  assert float(stdp_published.published_kernel(0.0)) == 0.0
  # whereas the textbook rule potentiates for the same ordering
  assert np.all(np.asarray(stdp.pair_kernel(dt)) > 0)
  # channel update: one pre channel spiking at t=2, one post channel at t=7 → clipped mean of the kernel
  dw = stdp_published.channel_update(jnp.array([[2.0]]), jnp.array([[7.0]]))
  np.testing.assert_allclose(float(dw[0, 0]), 0.003 * (np.exp(-5 / 20) - 1), rtol=1e-5)


def test_published_first_spike_time_is_eleven_without_spikes():
  t = stdp_published.first_spike_times(jax.random.key(0), jnp.array([[-1e4, 1e4]]))
  assert float(t[0, 0]) == 11.0
  assert 0.0 <= float(t[0, 1]) <= 9.0 or float(t[0, 1]) == 11.0


def test_bounded_direction_rotates_filters_and_restores_their_norms():
  w = jax.random.normal(jax.random.key(0), (3, 3, 2, 4))
  c = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
  ref = jnp.sqrt(jnp.sum(jnp.square(w), axis=(0, 1, 2)))
  d = stdp.bounded_direction(c, w, ref, norm_decay=1.0)
  radial = jnp.sum(d * w, axis=(0, 1, 2))
  np.testing.assert_allclose(radial, 0.0, atol=1e-4)  # at the reference norm: a pure rotation
  np.testing.assert_allclose(float(jnp.linalg.norm(d)), float(jnp.linalg.norm(w)), rtol=1e-5)  # layer-normalised
  d_big = stdp.bounded_direction(c, 2.0 * w, ref, norm_decay=1.0)  # too large → pulled back
  assert np.all(np.asarray(jnp.sum(d_big * w, axis=(0, 1, 2))) < 0)


def test_rate_spikes_fire_with_the_rate_coded_probability():
  """Spike frequencies = max_prob · clip(rate) (binomial 5-sigma band); p = 0 never fires, p = 1 always does; the
  two 16-bit halves of one random word (adjacent elements) are uncorrelated."""
  rates = jnp.asarray([0.0, 0.013, 0.25, 0.5, 0.77, 1.0, 1.7, -0.2])
  t = 40_000
  spikes = np.asarray(stdp.rate_spikes(jax.random.key(5), rates, t, 1.0))
  assert spikes.shape == (t, 8) and set(np.unique(spikes)) <= {0.0, 1.0}
  p = np.clip(np.asarray(rates, np.float64), 0, 1)
  freq = spikes.mean(axis=0)
  band = 5 * np.sqrt(p * (1 - p) / t) + 1e-5
  np.testing.assert_array_less(np.abs(freq - p), band)
  assert freq[0] == 0.0 and freq[-1] == 0.0 and freq[5] == 1.0 and freq[6] == 1.0
  half = np.asarray(stdp.rate_spikes(jax.random.key(6), jnp.full((2,), 0.5), t, 1.0))  # one word per time step
  assert abs(np.corrcoef(half[:, 0], half[:, 1])[0, 1]) < 5 / np.sqrt(t)
  scaled = np.asarray(stdp.rate_spikes(jax.random.key(7), jnp.full((4,), 1.0), t, 0.3)).mean()
  assert abs(scaled - 0.3) < 5 * np.sqrt(0.21 / (4 * t))


@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 2, 2)])
def test_counter_bits_are_jax_counter_mode_threefry_under_the_drawn_key(shape):
  """`counter_bits` = `jax.random.bits` in its non-partitionable (counter-mode) form, keyed by two words drawn
  from the given key (odd sizes included); the words are distinct."""
  key = jax.random.key(11)
  cipher_key = jax.random.wrap_key_data(jax.random.bits(key, (2,), jnp.uint32), impl="threefry2x32")
  with jax.threefry_partitionable(False):
    want = np.asarray(jax.random.bits(cipher_key, shape, jnp.uint32))
  got = np.asarray(stdp.counter_bits(key, shape))
  assert got.shape == shape and got.dtype == np.uint32
  np.testing.assert_array_equal(got, want)
  assert len(np.unique(got)) == got.size
