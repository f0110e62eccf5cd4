"""Compiler options change how fast a program compiles or runs, never what it computes."""

import jax
import numpy as np

from leut.models import cnn
from leut.train import loop
from leut.xla_cpu import run_once_jit


def test_initialisation_compiled_once_is_bit_identical_to_the_default_compile():
  # normal conv kernels and uniform dense layers: the two kinds of draw every network's and rule's init makes
  network = cnn.network((4, 8, 8), 16)

  def init(key):
    return network.init(key, conv_init="kaiming_normal", conv_bias=True)

  keys = loop.seed_keys(7, 3)
  default = jax.jit(jax.vmap(init))(keys)
  quick = run_once_jit(jax.vmap(init))(keys)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(default), jax.tree.leaves(quick), strict=True):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=jax.tree_util.keystr(path))
