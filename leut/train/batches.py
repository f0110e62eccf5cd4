"""Training batches as a pure function of (seed key, step): no iterator state to checkpoint.

Each seed trains on its own subset of the training set (PROTOCOL §2.1: 8,000 images drawn per seed). Every epoch is
a fresh permutation of that subset keyed by `fold_in(shuffle_key, epoch)`; step `t` takes the `t mod steps_per_epoch`-th
slice (`drop_last`). Augmentation is RandomHorizontalFlip(0.5) → RandomCrop(32, padding=4, zeros) → Normalize,
in that order, so padded pixels are black before normalisation, as in torchvision.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from leut.data.normalization import CIFAR_MEAN, CIFAR_STD
from leut.rules.base import Batch


class TrainData(NamedTuple):
  images: jax.Array  # N x 32 x 32 x 3 uint8, the whole training set (shared by every seed)
  labels: jax.Array  # N int32


def normalize(images_uint8: jax.Array) -> jax.Array:
  """uint8 RGB → float32 in CIFAR-normalised units."""
  x = images_uint8.astype(jnp.float32) / 255.0
  mean = jnp.asarray(CIFAR_MEAN, jnp.float32).reshape(1, 1, 1, 3)
  std = jnp.asarray(CIFAR_STD, jnp.float32).reshape(1, 1, 1, 3)
  return (x - mean) / std


def subset_indices(key: jax.Array, n_total: int, n_subset: int) -> jax.Array:
  """The seed's training subset: the first `n_subset` entries of a random permutation of the training set."""
  return jax.random.permutation(key, n_total)[:n_subset].astype(jnp.int32)


def augment(key: jax.Array, images_NxHxWx3: jax.Array, *, pad: int = 4) -> jax.Array:
  """Random horizontal flip then random crop with zero padding, independently per image (uint8 in, uint8 out)."""
  n, h, w, _ = images_NxHxWx3.shape
  k_flip, k_y, k_x = jax.random.split(key, 3)
  flip = jax.random.bernoulli(k_flip, 0.5, (n,))
  flipped = jnp.where(flip[:, None, None, None], images_NxHxWx3[:, :, ::-1, :], images_NxHxWx3)
  padded = jnp.pad(flipped, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  dy = jax.random.randint(k_y, (n,), 0, 2 * pad + 1)
  dx = jax.random.randint(k_x, (n,), 0, 2 * pad + 1)

  def crop(img, y, x):
    return jax.lax.dynamic_slice(img, (y, x, 0), (h, w, img.shape[-1]))

  return jax.vmap(crop)(padded, dy, dx)


def epoch_order(subset_N: jax.Array, shuffle_key: jax.Array, epoch: jax.Array) -> jax.Array:
  """The seed's training images in the order epoch `epoch` visits them: `subset_N` permuted by
  `fold_in(shuffle_key, epoch)`."""
  return subset_N[jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), subset_N.shape[0])]


def batch_from_order(
  data: TrainData,
  order_N: jax.Array,
  aug_key: jax.Array,
  within: jax.Array,
  *,
  batch_size: int,
  augment_images: bool = True,
) -> Batch:
  """The `within`-th batch (0-based) of an epoch whose image order is `order_N` (`epoch_order`)."""
  idx = jax.lax.dynamic_slice(order_N, (within * batch_size,), (batch_size,))
  images = data.images[idx]
  if augment_images:
    images = augment(aug_key, images)
  return Batch(normalize(images), data.labels[idx])


def batch_at(
  data: TrainData,
  subset_N: jax.Array,
  shuffle_key: jax.Array,
  aug_key: jax.Array,
  step: jax.Array,
  *,
  batch_size: int,
  steps_per_epoch: int,
  augment_images: bool = True,
) -> Batch:
  """The batch of training step `step` (0-based) for one seed."""
  order_N = epoch_order(subset_N, shuffle_key, step // steps_per_epoch)
  return batch_from_order(
    data, order_N, aug_key, step % steps_per_epoch, batch_size=batch_size, augment_images=augment_images
  )
