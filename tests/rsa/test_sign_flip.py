"""Exact and Monte Carlo sign-flip test."""

import itertools

import jax
import numpy as np
import pytest

import leut.rsa as rsa


def test_five_of_five_positive_seeds():
  d = np.array([0.01, 0.02, 0.015, 0.03, 0.005])
  assert float(rsa.sign_flip_test(d, "greater")) == 1 / 32
  assert float(rsa.sign_flip_test(d, "two-sided")) == 2 / 32
  assert float(rsa.sign_flip_test(-d, "less")) == 1 / 32


def test_exact_matches_enumeration_batched():
  rng = np.random.default_rng(0)
  d = rng.normal(0.1, 1.0, size=(3, 8))
  got = np.asarray(jax.jit(rsa.sign_flip_test, static_argnames="alternative")(d, alternative="two-sided"))
  signs = np.array(list(itertools.product([-1, 1], repeat=8)))
  for i in range(3):
    null = signs @ d[i] / 8
    ref = np.mean(np.abs(null) >= abs(d[i].mean()) - 1e-12)
    assert got[i] == pytest.approx(ref)


def test_monte_carlo_agrees_with_exact():
  rng = np.random.default_rng(1)
  d = rng.normal(0.3, 1.0, size=12)
  exact = float(rsa.sign_flip_test(d, "greater"))
  mc = float(rsa.sign_flip_test(d, "greater", key=jax.random.key(0), n_mc=40_000, exact_max_n=8))
  se = np.sqrt(exact * (1 - exact) / 40_000)
  assert abs(mc - exact) < 4 * se + 1e-4
