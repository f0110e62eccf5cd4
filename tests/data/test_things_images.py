"""Stimulus preprocessing against a direct PIL reference, and image lookup."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from leut.data import CIFAR_MEAN, CIFAR_STD, MissingDatasetError, load_stimulus_images, raw_images_01
from leut.data.things_images import concept_of, find_image


@pytest.fixture
def images_dir(tmp_path):
  rng = np.random.default_rng(0)
  for concept, name, (w, h) in (
    ("dog", "dog_12s.jpg", (300, 200)),
    ("ice_cream", "ice_cream_01b.jpg", (150, 251)),
    ("cat", "cat_03s.jpg", (64, 64)),
  ):
    (tmp_path / "object_images" / concept).mkdir(parents=True)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).convert("L" if concept == "cat" else "RGB").save(tmp_path / "object_images" / concept / name)
  return tmp_path


def test_preprocessing_matches_direct_pil_reference(images_dir):
  img = Image.open(images_dir / "object_images" / "dog" / "dog_12s.jpg").convert("RGB")
  # torchvision Resize(64): 300x200 -> shorter edge 64 -> (96, 64); CenterCrop(64): left 16, top 0
  ref = np.asarray(img.resize((96, 64), Image.BILINEAR).crop((16, 0, 80, 64)), np.float64) / 255
  # 150x251 -> (64, int(64*251/150)=107); top = round((107-64)/2) = round(21.5) = 22 (half to even)
  img2 = Image.open(images_dir / "object_images" / "ice_cream" / "ice_cream_01b.jpg").convert("RGB")
  ref2 = np.asarray(img2.resize((64, 107), Image.BILINEAR).crop((0, 22, 64, 86)), np.float64) / 255
  got = load_stimulus_images(images_dir, ["dog_12s.jpg", "ice_cream_01b.jpg"], px=64)
  assert got.shape == (2, 64, 64, 3) and got.dtype == np.float32
  for g, r in zip(got, (ref, ref2)):
    np.testing.assert_allclose(g, (r - np.array(CIFAR_MEAN)) / np.array(CIFAR_STD), atol=1e-5)
  np.testing.assert_allclose(raw_images_01(images_dir / "object_images", ["dog_12s.jpg"], px=64)[0], ref, atol=1e-6)


def test_upsampled_arm_goes_through_32px(images_dir):
  img = Image.open(images_dir / "object_images" / "dog" / "dog_12s.jpg").convert("RGB")
  small = img.resize((48, 32), Image.BILINEAR).crop((8, 0, 40, 32))
  ref = np.asarray(small.resize((96, 96), Image.BILINEAR), np.float64) / 255
  got = raw_images_01(images_dir, ["dog_12s.jpg"], px=96, upsampled=True)[0]
  np.testing.assert_allclose(got, ref, atol=1e-6)


def test_grayscale_is_converted_to_rgb(images_dir):
  got = raw_images_01(images_dir, ["cat_03s.jpg"], px=32)[0]
  assert got.shape == (32, 32, 3)
  np.testing.assert_array_equal(got[..., 0], got[..., 2])


def test_lookup_rules_and_missing_image(images_dir):
  assert concept_of("ice_cream_01b.jpg") == "ice_cream" and concept_of("candelabra_14s") == "candelabra"
  assert concept_of("dog") is None
  assert find_image(images_dir, "dog_12s").name == "dog_12s.jpg"
  assert find_image(images_dir, "ice_cream").name == "ice_cream_01b.jpg"  # a bare concept: first image
  with pytest.raises(MissingDatasetError, match=r"'dog_13s\.jpg'.*object_images/dog/dog_13s\.jpg"):
    load_stimulus_images(images_dir, ["dog_12s.jpg", "dog_13s.jpg"], px=32)
  with pytest.raises(MissingDatasetError, match=r"osf\.io.*data\.things_images_dir"):
    load_stimulus_images(images_dir / "none", ["dog_12s.jpg"], px=32)
