"""Compiler options change how fast a program compiles or runs, never what it computes."""

import jax
import numpy as np

from leut.models import cnn
from leut.train import loop
from leut.xla_cpu import run_once_jit


def test_initialisation_compiled_once_is_bit_identical_to_the_default_compile():
  # normal conv kernels and uniform dense layers: the two kinds of draw every network's and rule's init makes
  network = cnn.network((4,), 8)

  def init(key):
    return network.init(key, conv_init="kaiming_normal", conv_bias=True)

  keys = loop.seed_keys(7, 3)
  default = jax.jit(jax.vmap(init))(keys)
  quick = run_once_jit(jax.vmap(init))(keys)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(default), jax.tree.leaves(quick), strict=True):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=jax.tree_util.keystr(path))


def test_a_run_once_program_traced_inside_another_is_a_plain_jit():
  double = run_once_jit(lambda x: 2 * x)
  assert jax.eval_shape(double, jax.ShapeDtypeStruct((3,), np.float32)).shape == (3,)
  np.testing.assert_array_equal(jax.jit(lambda x: double(x) + 1)(np.ones(3, np.float32)), [3.0, 3.0, 3.0])
