"""THINGS stimulus images: lookup and the evaluation preprocessing of PROTOCOL §3.1.

Preprocessing reproduces torchvision on PIL images, done in PIL/NumPy (PROTOCOL §7:
the resampler matters because resolution is the main variable):
``convert('RGB')`` -> ``Resize(px)`` (shorter edge to px, ``Image.BILINEAR``, which
PIL antialiases when reducing) -> ``CenterCrop(px)`` -> /255 -> CIFAR normalisation.
The *upsampled* arm first goes down to 32 px: Resize(32) -> CenterCrop(32) -> Resize(px).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from leut.data.errors import DataFormatError, MissingDatasetError, missing_dataset
from leut.data.normalization import normalize_01

__all__ = [
  "find_image",
  "resize_shorter",
  "center_crop",
  "preprocess_01",
  "raw_images_01",
  "load_stimulus_images",
  "check_images",
  "concept_of",
]


def _root(images_dir: os.PathLike | str) -> Path:
  p = Path(images_dir).expanduser()
  if (p / "object_images").is_dir():
    return p / "object_images"
  if not p.is_dir():
    raise missing_dataset("things_images", p)
  return p


def concept_of(stimulus: str) -> str | None:
  """Concept of a THINGS file name (``dog_12s.jpg`` -> ``dog``), None when it does not parse.

  The concept is the stem without its last ``_`` token when that token has at most
  four characters and contains a digit (PROTOCOL §3.1).
  """
  stem = Path(stimulus).stem if Path(stimulus).suffix else stimulus
  head, sep, tail = stem.rpartition("_")
  if sep and len(tail) <= 4 and any(ch.isdigit() for ch in tail):
    return head
  return None


def find_image(images_dir: os.PathLike | str, stimulus: str) -> Path:
  """Path of ``stimulus`` as ``object_images/<concept>/<stimulus>`` (PROTOCOL §3.1).

  ``images_dir`` may be the ``object_images`` folder or its parent. A name without
  an image suffix gets ``.jpg``. A name that does not parse as ``<concept>_<nn>`` is
  taken as a concept, and the first image (sorted) of its folder is used.

  Raises:
    MissingDatasetError: naming the stimulus and the path tried.
  """
  root = _root(images_dir)
  name = stimulus if Path(stimulus).suffix else stimulus + ".jpg"
  concept = concept_of(stimulus)
  if concept is not None:
    path = root / concept / name
    if path.is_file():
      return path
  else:
    folder = root / Path(stimulus).stem
    files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if files:
      return files[0]
    path = folder / "*.jpg"
  raise MissingDatasetError(
    f"THINGS image for stimulus {stimulus!r} not found: tried {path}. Download the THINGS "
    f"object images from https://osf.io/jum2f/ and point `data.things_images_dir` to the "
    f"folder that contains object_images/<concept>/.",
    path,
  )


def resize_shorter(img: Image.Image, px: int) -> Image.Image:
  """torchvision ``Resize(px)`` on a PIL image: shorter edge to px, bilinear (antialiased)."""
  w, h = img.size
  short, long = (w, h) if w <= h else (h, w)
  new_long = int(px * long / short)
  new_w, new_h = (px, new_long) if w <= h else (new_long, px)
  if (new_w, new_h) == (w, h):
    return img
  return img.resize((new_w, new_h), Image.BILINEAR)


def center_crop(img: Image.Image, px: int) -> Image.Image:
  """torchvision ``CenterCrop(px)`` for images at least px on each side."""
  w, h = img.size
  top, left = int(round((h - px) / 2.0)), int(round((w - px) / 2.0))
  return img.crop((left, top, left + px, top + px))


def preprocess_01(img: Image.Image, px: int, *, upsampled: bool = False) -> np.ndarray:
  """One PIL image -> float32 (px, px, 3) RGB in [0, 1] (no normalisation)."""
  img = img.convert("RGB")
  if upsampled:
    img = center_crop(resize_shorter(img, 32), 32)
  img = center_crop(resize_shorter(img, px), px)
  return np.asarray(img, np.float32) / 255.0


def raw_images_01(
  images_dir: os.PathLike | str, stimuli: Sequence[str], *, px: int, upsampled: bool = False
) -> np.ndarray:
  """Stimuli as float32 (S, px, px, 3) RGB in [0, 1], for pixel/colour control RDMs."""
  out = np.empty((len(stimuli), px, px, 3), np.float32)
  for i, s in enumerate(stimuli):
    with Image.open(find_image(images_dir, s)) as img:
      out[i] = preprocess_01(img, px, upsampled=upsampled)
  return out


def load_stimulus_images(
  images_dir: os.PathLike | str, stimuli: Sequence[str], *, px: int, upsampled: bool = False
) -> np.ndarray:
  """Model inputs for the fMRI stimuli: float32 (S, px, px, 3), CIFAR-normalised (PROTOCOL §3.1).

  Args:
    images_dir: the ``object_images`` folder or its parent (``data.things_images_dir``).
    stimuli: file names in RDM order, e.g. ``BrainData.stimuli``.
    px: output side length (224 main, 32 control).
    upsampled: the UPSAMPLED arm: through 32 px first, then up to px.

  Example:
    >>> x = load_stimulus_images(d.things_images_dir, brain.stimuli, px=224)  # doctest: +SKIP
  """
  return normalize_01(raw_images_01(images_dir, stimuli, px=px, upsampled=upsampled))


def check_images(images_dir: os.PathLike | str, stimuli: Sequence[str]) -> None:
  """Every stimulus has an image file whose header PIL can read (no pixel is decoded), before any training.

  Raises:
    MissingDatasetError: a missing folder or image (naming the stimulus and the path tried).
    DataFormatError: a file that is not a readable image.
  """
  for s in stimuli:
    path = find_image(images_dir, s)
    try:
      with Image.open(path) as img:
        img.size  # noqa: B018 - reading the header is the check
    except (OSError, SyntaxError, ValueError) as err:  # PIL.UnidentifiedImageError is an OSError
      raise DataFormatError(path, f"not a readable image: {err}") from None
