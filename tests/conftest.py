"""Shared pytest set-up: strict JAX numerics and small, fast defaults for every test."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

# Implicit rank promotion hides shape bugs (nanodo's habit); tests run with it off.
jax.config.update("jax_numpy_rank_promotion", "raise")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
  """The embedded synthetic default, written once per test session."""
  from leut.data import synthetic

  root = tmp_path_factory.mktemp("synthetic")
  synthetic.ensure_default(root)
  return root
