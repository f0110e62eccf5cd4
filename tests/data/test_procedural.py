"""The procedural image world: resolution-independent scenes, distinct classes, speed."""

from __future__ import annotations

import time

import numpy as np

from leut.data.procedural import CLASS_NAMES, render, render_silhouettes, sample_scenes


def test_same_scene_at_two_resolutions():
  scenes = sample_scenes(np.random.default_rng(0), np.arange(20) % 10)
  small = render(scenes, 32, noise_sd=0)
  big = render(scenes, 128, noise_sd=0).reshape(20, 32, 4, 32, 4, 3).mean((2, 4))
  assert np.abs(small - big).mean() < 0.03


def test_classes_have_distinct_silhouettes():
  labels = np.arange(10)
  sc = sample_scenes(np.random.default_rng(1), labels)
  sil = render_silhouettes(sc._replace(angle_N=np.zeros(10, np.float32)), 32).reshape(10, -1)
  d = np.abs(sil[:, None] - sil[None]).mean(-1)
  assert d[~np.eye(10, dtype=bool)].min() > 0.02
  assert ((sil > 0.5).mean(1) > 0.1).all(), CLASS_NAMES


def test_thousands_of_small_images_in_seconds():
  t = time.perf_counter()
  x = render(sample_scenes(np.random.default_rng(0), np.arange(2000) % 10), 32)
  assert time.perf_counter() - t < 5.0
  assert x.shape == (2000, 32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
