"""Brain-Score (BrainIO) stimulus sets: a CSV of stimulus metadata plus a ZIP of image files.

The CSV has one row per stimulus with a ``stimulus_id`` column (``image_id`` in sets packaged before 2023) and a
``filename`` column naming the file inside the ZIP (flat, e.g. ``<sha1>.png``); other columns are metadata
(``object_name``, ``category_name``, ``variation`` for HvM; ``texture_family``, ``texture_type``, ``sample`` for
FreemanZiemba2013). Files are named ``image_<identifier with dots as underscores>.{csv,zip}`` (``stimulus_`` in
newer packages). Images are read straight from the ZIP, or from the folder BrainIO unzips it into.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from leut.data.errors import DataFormatError, MissingDatasetError
from leut.data.things_images import preprocess_01

__all__ = ["StimulusSet", "read_stimulus_set", "stimulus_set_files", "write_stimulus_set"]


def stimulus_set_files(folder: Path, identifier: str) -> tuple[Path, Path]:
  """(csv, zip-or-folder) of stimulus set ``identifier`` under ``folder`` (or one sub-folder deep, as BrainIO caches).

  Raises:
    MissingDatasetError: naming the file names tried.
  """
  stem = identifier.replace(".", "_")
  names = [f"{prefix}{stem}" for prefix in ("image_", "stimulus_")]
  for base in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())] if folder.is_dir() else []:
    for name in names:
      csv = base / f"{name}.csv"
      if csv.is_file():
        z = base / f"{name}.zip"
        return csv, z if z.is_file() else base
  raise MissingDatasetError(
    f"stimulus set {identifier!r} not found under {folder}: expected {names[0]}.csv with its .zip "
    f"(or {names[1]}.csv). Get it with `leut fetch` or from Brain-Score's S3 bucket.",
    folder,
  )


class StimulusSet:
  """A stimulus set's metadata and its images (read from the ZIP or the folder next to the CSV)."""

  def __init__(self, csv_path: os.PathLike | str, images: os.PathLike | str):
    self.csv_path = Path(csv_path)
    self.images = Path(images)
    table = pd.read_csv(self.csv_path)
    if "stimulus_id" not in table and "image_id" in table:
      table["stimulus_id"] = table["image_id"]
    for col in ("stimulus_id", "filename"):
      if col not in table:
        raise DataFormatError(self.csv_path, f"no {col!r} column (BrainIO stimulus set); columns: {list(table)}")
    table["stimulus_id"] = table["stimulus_id"].astype(str)
    if table["stimulus_id"].duplicated().any():
      dup = table["stimulus_id"][table["stimulus_id"].duplicated()].iloc[0]
      raise DataFormatError(self.csv_path, f"stimulus_id {dup!r} appears more than once")
    self.table = table.set_index("stimulus_id", drop=False)

  def labels(self, stimuli: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The first of ``columns`` present in the CSV, as text, for each stimulus (its id when none is)."""
    for c in columns:
      if c in self.table:
        return [str(v) for v in self.table.loc[list(stimuli), c]]
    return list(stimuli)

  def _filename(self, stimulus: str) -> str:
    try:
      return str(self.table.at[stimulus, "filename"])
    except KeyError:
      raise DataFormatError(self.csv_path, f"stimulus {stimulus!r} is not in the stimulus set") from None

  def load_images_01(self, stimuli: Sequence[str], px: int, upsampled: bool = False) -> np.ndarray:
    """Images as float32 (S, px, px, 3) RGB in [0, 1], resized and centre-cropped as THINGS images (PROTOCOL §3.1)."""
    out = np.empty((len(stimuli), px, px, 3), np.float32)
    archive = zipfile.ZipFile(self.images) if self.images.suffix == ".zip" else None
    try:
      for i, s in enumerate(stimuli):
        name = self._filename(s)
        if archive is not None:
          try:
            data = archive.read(name)
          except KeyError:
            raise DataFormatError(self.images, f"no file {name!r} (stimulus {s!r}) in the archive") from None
          img = Image.open(io.BytesIO(data))
        else:
          path = self.images / name
          if not path.is_file():
            raise MissingDatasetError(f"image {path} of stimulus {s!r} not found (unzip the stimulus set)", path)
          img = Image.open(path)
        with img:
          out[i] = preprocess_01(img, px, upsampled=upsampled)
    finally:
      if archive is not None:
        archive.close()
    return out


def read_stimulus_set(folder: os.PathLike | str, identifier: str) -> StimulusSet:
  """The stimulus set ``identifier`` (e.g. ``dicarlo.hvm-public``) found under ``folder``."""
  csv, images = stimulus_set_files(Path(folder), identifier)
  return StimulusSet(csv, images)


def write_stimulus_set(
  folder: os.PathLike | str,
  identifier: str,
  table: pd.DataFrame,
  images_NxHxWx3: np.ndarray,
  *,
  id_column: str = "stimulus_id",
  ext: str = "png",
) -> tuple[Path, Path]:
  """Writes ``image_<identifier>.csv`` and ``.zip`` (files named ``<id>.<ext>``) as BrainIO packages them.

  ``id_column`` is ``stimulus_id``, or ``image_id`` as in sets packaged before 2023.
  """
  folder = Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  stem = f"image_{identifier.replace('.', '_')}"
  table = table.copy()
  table["filename"] = [f"{s}.{ext}" for s in table[id_column]]
  zip_path = folder / f"{stem}.zip"
  with zipfile.ZipFile(zip_path, "w") as z:
    for name, img in zip(table["filename"], images_NxHxWx3):
      buf = io.BytesIO()
      Image.fromarray(np.round(np.asarray(img) * 255).astype(np.uint8)).save(buf, format="PNG")
      z.writestr(name, buf.getvalue())
  csv_path = folder / f"{stem}.csv"
  table.to_csv(csv_path, index=False)
  return csv_path, zip_path
