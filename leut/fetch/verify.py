"""Checking files against a manifest: size and published checksum; and the unpacked THINGS image tree."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

from leut.fetch.manifest import Dataset, RemoteFile

__all__ = ["Check", "file_digest", "check_file", "check_dataset", "check_things_images"]

THINGS_CONCEPTS, THINGS_IMAGES = 1854, 26107


class Check(NamedTuple):
  path: Path
  ok: bool
  message: str


def file_digest(path: os.PathLike | str, algorithm: str, *, chunk: int = 1 << 20) -> str:
  """Hex digest of a file, read in chunks."""
  h = hashlib.new(algorithm)
  with open(path, "rb") as f:
    while block := f.read(chunk):
      h.update(block)
  return h.hexdigest()


def check_file(path: os.PathLike | str, file: RemoteFile) -> Check:
  """Whether ``path`` is ``file``: its size (where known) and its published checksum (where there is one)."""
  path = Path(path)
  if not path.is_file():
    return Check(path, False, "missing")
  size = path.stat().st_size
  if file.size is not None and size != file.size:
    return Check(path, False, f"size {size} bytes, expected {file.size}")
  if file.checksum is None:
    return Check(path, True, f"present ({size} bytes); no published checksum to compare")
  algorithm, _, want = file.checksum.partition(":")
  got = file_digest(path, algorithm)
  if got != want:
    return Check(path, False, f"{algorithm} {got}, expected {want}")
  return Check(path, True, f"{algorithm} matches")


def check_dataset(ds: Dataset, folder: os.PathLike | str, parts=None) -> list[Check]:
  """``check_file`` for every file of ``ds`` (of the chosen ``parts``) under ``folder``."""
  folder = Path(folder)
  return [check_file(folder / f.path, f) for f in ds.files if not parts or f.part in parts]


def check_things_images(folder: os.PathLike | str) -> list[Check]:
  """The unpacked THINGS images: ``object_images/<concept>/*.jpg``, counted against the release's 1,854 concepts
  and 26,107 images (a partial tree is reported, not refused: the pipeline needs only the stimuli it uses)."""
  folder = Path(folder)
  root = folder / "object_images" if (folder / "object_images").is_dir() else folder
  if not root.is_dir():
    return [Check(root, False, "missing: no object_images/ folder")]
  concepts = [p for p in root.iterdir() if p.is_dir()]
  images = sum(1 for c in concepts for f in c.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
  if not concepts or not images:
    return [Check(root, False, "no <concept>/<image>.jpg files")]
  complete = len(concepts) == THINGS_CONCEPTS and images == THINGS_IMAGES
  what = "the complete release" if complete else f"the release has {THINGS_CONCEPTS} and {THINGS_IMAGES}"
  return [Check(root, True, f"{len(concepts)} concept folders, {images} images ({what})")]
