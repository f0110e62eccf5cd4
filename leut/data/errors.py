"""Errors raised by the data layer.

Every message names the file (or folder) involved and what is wrong with it, so a
user can fix the data without reading the loader. Nothing in ``leut.data`` ever
downloads anything; a missing dataset raises :class:`MissingDatasetError` with the
download location, where to put it and which config field points to it.
"""

from __future__ import annotations

import os

from leut.errors import LeutError, LeutWarning

__all__ = [
  "DataFormatError",
  "MissingDatasetError",
  "UnknownRoiError",
  "UnverifiedOrderWarning",
  "DATASET_SOURCES",
  "missing_dataset",
]


class DataFormatError(LeutError, ValueError):
  """A data file exists but its content is not what the format requires."""

  def __init__(self, path: os.PathLike | str, problem: str):
    self.path = str(path)
    self.problem = problem
    super().__init__(f"{self.path}: {problem}")


class UnknownRoiError(DataFormatError):
  """A requested ROI is neither a known alias nor a column of the voxel table."""


class UnverifiedOrderWarning(LeutWarning):
  """Rows of two files are matched by position because nothing in them (e.g. a voxel_id column) allows a check."""


class MissingDatasetError(LeutError, FileNotFoundError):
  """A dataset (or one file of it) is not on disk. The message says how to get it."""

  def __init__(self, message: str, path: os.PathLike | str | None = None):
    self.path = None if path is None else str(path)
    super().__init__(message)

  def __str__(self) -> str:  # FileNotFoundError would otherwise format errno/filename.
    return self.args[0]


# dataset key -> (what it is, how to get it, expected layout, config field)
DATASET_SOURCES = {
  "cifar10": (
    "CIFAR-10 (python or binary version)",
    "download it from https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz)",
    "extract it so that <dir>/cifar-10-batches-py/data_batch_1 exists "
    "(the .tar.gz itself or cifar-10-batches-bin also work)",
    "data.cifar_dir",
  ),
  "things_fmri": (
    "THINGS-fMRI single-trial betas (table format)",
    "download it from the Figshare collection doi 10.25452/figshare.plus.c.6161151 "
    "(betas_csv.zip) or OpenNeuro ds004192 (derivatives/ICA-betas)",
    "unzip so that <dir>/betas_csv/sub-01_ResponseData.h5, "
    "sub-01_VoxelMetadata.csv and sub-01_StimulusMetadata.csv exist",
    "data.things_fmri_dir",
  ),
  "things_images": (
    "THINGS object images",
    "download it from https://osf.io/jum2f/ (registration/password required)",
    "unzip so that <dir>/object_images/<concept>/<concept>_01b.jpg exists",
    "data.things_images_dir",
  ),
  "brain_rdms": (
    "Precomputed brain RDMs",
    "make them from THINGS-fMRI with `leut brain-rdms --things-fmri DIR --out <dir>`",
    "so that <dir>/fmri_rdm_{ROI}_{sub}.npy and <dir>/stim_order_{sub}.txt exist",
    "data.brain_rdms_dir",
  ),
  "majajhong2015": (
    "MajajHong2015 (Brain-Score's public V4/IT assembly and the HvM stimulus set)",
    "get it from Brain-Score's public bucket with `leut fetch majajhong2015 --dest <dir>`",
    "so that <dir>/assy_dicarlo_MajajHong2015_public.nc and image_dicarlo_hvm-public.csv/.zip exist",
    "data.brain_dir",
  ),
  "freemanziemba2013": (
    "FreemanZiemba2013 (Brain-Score's public V1/V2 assembly and the aperture stimulus set)",
    "get it from Brain-Score's public bucket with `leut fetch freemanziemba2013 --dest <dir>`",
    "so that <dir>/assy_movshon_FreemanZiemba2013_public.nc and its image_movshon_*.csv/.zip exist",
    "data.brain_dir",
  ),
  "tvsd": (
    "TVSD (THINGS Ventral Stream Spiking Dataset, normalised MUA)",
    "get it from https://gin.g-node.org/paolo_papale/TVSD with `leut fetch tvsd --dest <dir>`",
    "so that <dir>/monkeyF/THINGS_normMUA.mat and <dir>/monkeyN/THINGS_normMUA.mat exist (with _logs/things_imgs.mat)",
    "data.brain_dir",
  ),
}


def missing_dataset(key: str, path: os.PathLike | str, detail: str = "") -> MissingDatasetError:
  """Builds the :class:`MissingDatasetError` for dataset ``key`` expected at ``path``."""
  what, how, layout, field = DATASET_SOURCES[key]
  msg = f"{what} not found at {path}"
  if detail:
    msg += f" ({detail})"
  msg += f". Nothing is downloaded automatically: {how}, {layout}, and point the config field `{field}` to <dir>."
  return MissingDatasetError(msg, path)
