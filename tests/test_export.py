"""Proof by lowering: every stage of the protocol exports (`jax.export`) for CUDA and TPU from this CPU-only machine,
with nothing CPU-only left in the lowered module and full float32 products in the statistics kernels.

The training segment of every rule, the 224-px feature readout, and the bootstrap, permutation and sign-flip kernels
are exported once each, for the platforms ("cuda", "tpu") together, at tiny sizes (3 seeds, widths (4, 8, 8)).
"""

import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from leut import rules
from leut.models import cnn
from leut.rsa import permutation, sign_flip
from leut.train import batches, loop
from leut.xla_cpu import network_jit

bootstrap = importlib.import_module("leut.rsa.bootstrap")  # the module; `leut.rsa.bootstrap` is also a function
ACCELERATORS = ("cuda", "tpu")
N_SEEDS = 3
# Custom calls that every XLA backend implements (sharding annotations); anything else (lapack_*, ducc_fft,
# xla_python_cpu_callback, YNNPACK, ...) would tie the program to one platform.
PORTABLE_TARGETS = {"Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape"}


def custom_call_targets(module_text: str) -> set[str]:
  return set(re.findall(r"custom_call @([\w.$-]+)", module_text))


def convolutions(module_text: str) -> list[str]:
  return [line for line in module_text.splitlines() if "stablehlo.convolution" in line]


def seed_grouped(conv_line: str) -> bool:
  """A convolution that runs all seeds at once (the accelerator path), not one seed of CPU's per-seed loop."""
  return bool(re.search(rf"(feature|batch)_group_count = {N_SEEDS} ", conv_line))


def products_below_highest(module_text: str) -> list[str]:
  """Matrix products and convolutions whose operands are not both at `HIGHEST` (full float32) precision."""
  lines = [ln for ln in module_text.splitlines() if "stablehlo.dot_general" in ln or "stablehlo.convolution" in ln]
  return [ln.strip() for ln in lines if "precision = [HIGHEST, HIGHEST]" not in ln]


def export_for_accelerators(jitted, *args, **kwargs) -> str:
  exported = export.export(jitted, platforms=ACCELERATORS)(*args, **kwargs)
  assert exported.platforms == ACCELERATORS
  assert exported.mlir_module_serialized  # portable StableHLO bytecode, what a GPU or TPU host would compile
  text = exported.mlir_module()
  assert custom_call_targets(text) <= PORTABLE_TARGETS, custom_call_targets(text)
  return text


@pytest.fixture(scope="module")
def tiny_training():
  """The network, data and seed keys every rule's export shares (8 all-zero images, batch 4, 3 seeds)."""
  network = cnn.network((4, 8, 8), 16)
  data = batches.TrainData(jnp.zeros((8, 32, 32, 3), jnp.uint8), jnp.arange(8, dtype=jnp.int32) % 10)
  return network, data, loop.seed_keys(0, N_SEEDS)


@pytest.mark.parametrize("name", rules.available())
def test_training_segment_and_224px_readout_of_every_rule_export_for_cuda_and_tpu(name, tiny_training):
  """The seed-vmapped training segment (2 steps) and the 224-px readout lower for CUDA and TPU with no CPU-only
  custom call and none of CPU's per-seed convolution loop: every convolution runs the 3 seeds as one grouped
  convolution, except the readout's first, which reads the stimuli every seed shares (one convolution for all)."""
  network, data, keys = tiny_training
  rule, tx = rules.make(name, steps_per_epoch=2, epochs=2, network=network)
  trainer = loop.make_trainer(rule, tx, data, n_subset=8, batch_size=4, network=network)
  state = jax.eval_shape(trainer.init_all, keys)

  train_convs = convolutions(export_for_accelerators(trainer.run_segment, state, keys, 2))
  assert train_convs and all(seed_grouped(c) for c in train_convs), [c for c in train_convs if not seed_grouped(c)]

  readout = network_jit(jax.vmap(rule.represent, in_axes=(0, 0, 0, None)))
  stimuli = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
  read_convs = convolutions(
    export_for_accelerators(readout, state.params, state.model_state, state.rule_state, stimuli)
  )
  shared_input = [c for c in read_convs if not seed_grouped(c)]
  assert read_convs and all("tensor<2x224x224x3xf32>" in c for c in shared_input), shared_input


def _rdm_vectors(n_vectors: int, n_stimuli: int, seed: int) -> np.ndarray:
  n_pairs = n_stimuli * (n_stimuli - 1) // 2
  return np.random.default_rng(seed).normal(size=(n_vectors, n_pairs)).astype(np.float32)


def test_bootstrap_kernels_export_for_cuda_and_tpu_with_every_product_at_full_float32():
  """Rank (Spearman, rho_a; with ties) and Pearson bootstrap kernels: HIGHEST precision on every product."""
  n_stimuli = 8
  models, subjects = _rdm_vectors(2, n_stimuli, 0), _rdm_vectors(3, n_stimuli, 1)
  models[:, :4] = 0.5  # ties, so the tie-fixing path is lowered too
  idx_BxS = np.asarray(bootstrap.resample_indices(jax.random.key(0), 4, n_stimuli))
  w_P = jnp.ones(models.shape[1], jnp.float32)
  rank_kernel, pearson_kernel = bootstrap._compiled_kernels()
  (m_sorted, m_ties), (s_sorted, s_ties) = bootstrap._prepare_host(models), bootstrap._prepare_host(subjects)
  texts = [
    export_for_accelerators(
      rank_kernel, m_sorted, s_sorted, idx_BxS, w_P, method=method, model_ties=m_ties, subject_ties=s_ties, batch_size=2
    )
    for method in ("spearman", "rho_a")
  ]
  texts.append(export_for_accelerators(pearson_kernel, models, subjects, idx_BxS, w_P, batch_size=2))
  for text in texts:
    assert "stablehlo.dot_general" in text
    assert products_below_highest(text) == []


@pytest.mark.parametrize("with_pair_mask", [False, True])
def test_permutation_kernel_exports_for_cuda_and_tpu_with_every_product_at_full_float32(with_pair_mask):
  n_stimuli = 8
  a, b = _rdm_vectors(2, n_stimuli, 2)
  brain = _rdm_vectors(1, n_stimuli, 3)[0]
  perms = permutation.permutations(jax.random.key(1), 4, n_stimuli)
  w_P = jnp.asarray(np.arange(a.shape[0]) % 3 > 0, jnp.float32) if with_pair_mask else None
  text = export_for_accelerators(
    permutation._permutation_jit, a, b, brain, perms, w_P, method="spearman", alternative="two-sided", batch_size=2
  )
  assert "stablehlo.dot_general" in text
  assert products_below_highest(text) == []


@pytest.mark.parametrize("n_seeds", [5, 24])  # exact enumeration and Monte Carlo
def test_sign_flip_kernel_exports_for_cuda_and_tpu_with_every_product_at_full_float32(n_seeds):
  test = jax.jit(lambda d, k: sign_flip.sign_flip_test(d, key=k, n_mc=1000, chunk=256))
  diffs = jax.ShapeDtypeStruct((4, n_seeds), jnp.float32)
  text = export_for_accelerators(test, diffs, jax.random.key(0))
  assert "stablehlo.dot_general" in text
  assert products_below_highest(text) == []


def test_the_checks_see_a_cpu_only_program_and_a_reduced_precision_product():
  """The checks above can fail: CPU's per-seed loop shows as ungrouped convolutions, a default-precision product as
  a product below HIGHEST, and a CPU-only custom call (LAPACK's eigensolver) as a non-portable target."""
  x = jnp.zeros((N_SEEDS, 2, 8, 8, 3))
  k = jnp.zeros((N_SEEDS, 3, 3, 3, 4))
  from leut.models import layers

  on_cpu = export.export(jax.jit(jax.vmap(layers.conv3x3)), platforms=("cpu",))(x, k).mlir_module()
  assert convolutions(on_cpu) and not any(seed_grouped(c) for c in convolutions(on_cpu))
  default_product = export.export(jax.jit(jnp.matmul), platforms=ACCELERATORS)(jnp.zeros((2, 2)), jnp.zeros((2, 2)))
  assert products_below_highest(default_product.mlir_module())
  eigh = export.export(jax.jit(jnp.linalg.eigh), platforms=("cpu",))(jnp.eye(3)).mlir_module()
  assert not custom_call_targets(eigh) <= PORTABLE_TARGETS
