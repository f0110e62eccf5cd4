"""What `leut fetch` can get: each dataset's files, where their owners publish them, and their published checksums.

A checksum is recorded only where the owner publishes one (Brain-Score's lookup tables give SHA-1 for every
assembly and stimulus-set file; the CIFAR-10 page gives the archive's MD5); elsewhere ``checksum`` is None and
``note`` says so, and the file is checked by its size where that is known. Nothing here is ever fetched by
`leut run`.

Sources:
  CIFAR-10: https://www.cs.toronto.edu/~kriz/cifar.html (MD5 on the page; size as served).
  Brain-Score: brain-score/vision ``brainscore_vision/data/{majajhong2015,freemanziemba2013}/__init__.py`` (bucket,
    file names, SHA-1) and ``data_helpers/s3.py`` (``https://<bucket>.s3.amazonaws.com/<prefix><identifier>``);
    the same SHA-1s are in brain-score/brainio_collection ``lookup.csv``.
  THINGS-fMRI: OpenNeuro ds004192, ``derivatives/ICA-betas/sub-XX/voxel-metadata/`` on OpenNeuro's public S3.
  TVSD: https://gin.g-node.org/paolo_papale/TVSD (README: ``raw/master/monkey?/THINGS_normMUA.mat``).
  THINGS images: https://osf.io/jum2f/ (password-protected; not downloaded).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RemoteFile", "Dataset", "DATASETS", "dataset"]


class RemoteFile(NamedTuple):
  path: str  # where it goes, relative to the destination folder
  url: str
  size: int | None  # bytes, where known
  checksum: str | None  # "sha1:<hex>" or "md5:<hex>", only where published
  note: str = ""  # the checksum's source, or why there is none
  part: str = ""  # a selectable part of the dataset (a subject, a monkey)


class Dataset(NamedTuple):
  name: str
  description: str
  files: tuple[RemoteFile, ...]
  overrides: str  # config overrides to print, with {dest}
  gated: str = ""  # instructions when the data cannot be downloaded by a script
  licence: str = ""


_BRAINSCORE = "https://brainio-brainscore.s3.amazonaws.com/"
_BS_NOTE = "SHA-1 published by Brain-Score (brainscore_vision/data/{}/__init__.py)"
_OPENNEURO = "https://s3.amazonaws.com/openneuro.org/ds004192/derivatives/ICA-betas/"
_GIN = "https://gin.g-node.org/paolo_papale/TVSD/raw/master/"
_NO_SUM = "no checksum published by {}; checked by size only where the size is known"


def _brainscore(dataset: str, name: str, sha1: str) -> RemoteFile:
  return RemoteFile(name, _BRAINSCORE + name, None, f"sha1:{sha1}", _BS_NOTE.format(dataset))


def _things_fmri_subject(sub: str) -> tuple[RemoteFile, ...]:
  names = (
    f"{sub}_task-things_voxel-wise-responses.h5",
    f"{sub}_task-things_voxel-metadata.tsv",
    f"{sub}_task-things_stimulus-metadata.tsv",
  )
  folder = f"{sub}/voxel-metadata/"
  note = _NO_SUM.format("OpenNeuro for derivatives")
  return tuple(
    RemoteFile(f"derivatives/ICA-betas/{folder}{n}", _OPENNEURO + folder + n, None, None, note, sub) for n in names
  )


def _tvsd_monkey(monkey: str) -> tuple[RemoteFile, ...]:
  note = _NO_SUM.format("the TVSD release")
  return tuple(
    RemoteFile(f"{monkey}/{n}", _GIN + f"{monkey}/{n}", None, None, note, monkey)
    for n in ("THINGS_normMUA.mat", "_logs/things_imgs.mat")
  )


DATASETS = {
  d.name: d
  for d in (
    Dataset(
      "cifar10",
      "CIFAR-10, python version (163 MB)",
      (
        RemoteFile(
          "cifar-10-python.tar.gz",
          "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
          170498071,
          "md5:c58f30108f718f92721af3b95e74349a",
          "MD5 published on https://www.cs.toronto.edu/~kriz/cifar.html",
        ),
      ),
      "--config.data.source=files --config.data.cifar_dir={dest}",
    ),
    Dataset(
      "things_fmri",
      "THINGS-fMRI single-trial responses, table format, per subject (OpenNeuro ds004192 derivatives)",
      _things_fmri_subject("sub-01") + _things_fmri_subject("sub-02") + _things_fmri_subject("sub-03"),
      "--config.data.source=files --config.data.things_fmri_dir={dest}",
      licence="CC0 (OpenNeuro)",
    ),
    Dataset(
      "things_images",
      "THINGS object images (26,107 images of 1,854 concepts)",
      (),
      "--config.data.things_images_dir={dest}",
      gated=(
        "The THINGS images are password-protected by their licence, so leut does not download them. Register at "
        "https://osf.io/jum2f/ (THINGS database, 'Main/images_THINGS.zip' and its password file), unzip so that "
        "{dest}/object_images/<concept>/<concept>_01b.jpg exists, then check the tree with "
        "`leut fetch --verify things_images {dest}`."
      ),
    ),
    Dataset(
      "majajhong2015",
      "MajajHong2015 V4/IT, Brain-Score public assembly + HvM public stimulus set",
      (
        _brainscore(
          "majajhong2015", "assy_dicarlo_MajajHong2015_public.nc", "13d28ca0ce88ee550b54db3004374ae19096e9b9"
        ),
        _brainscore("majajhong2015", "image_dicarlo_hvm-public.csv", "5ca7a3da00d8e9c694a9cd725df5ba0ad6d735af"),
        _brainscore("majajhong2015", "image_dicarlo_hvm-public.zip", "8aa44e038d7b551efa8077467622f9d48d72e473"),
      ),
      "--config.data.source=files --config.data.brain=majajhong2015 --config.data.brain_dir={dest}"
      " --config.data.rois=V4,IT",
    ),
    Dataset(
      "freemanziemba2013",
      "FreemanZiemba2013 V1/V2, Brain-Score public assembly + aperture stimulus set",
      (
        _brainscore(
          "freemanziemba2013", "assy_movshon_FreemanZiemba2013_public.nc", "761c08f796db4e342555cdb60eef23a4f19ead43"
        ),
        _brainscore(
          "freemanziemba2013",
          "image_movshon_FreemanZiemba2013_aperture-public.csv",
          "194c9b301a4e3e9cff02481d4c19b39331d52660",
        ),
        _brainscore(
          "freemanziemba2013",
          "image_movshon_FreemanZiemba2013_aperture-public.zip",
          "ad3c6c237491485c863acd2f4d2f219f737e424c",
        ),
      ),
      "--config.data.source=files --config.data.brain=freemanziemba2013 --config.data.brain_dir={dest}"
      " --config.data.rois=V1,V2",
    ),
    Dataset(
      "tvsd",
      "THINGS Ventral Stream Spiking Dataset, normalised MUA + image logs (images: things_images)",
      _tvsd_monkey("monkeyF") + _tvsd_monkey("monkeyN"),
      "--config.data.source=files --config.data.brain=tvsd --config.data.brain_dir={dest} --config.data.rois=V1,V4,IT",
      licence="CC BY 4.0",
    ),
  )
}


def dataset(name: str, datasets=None) -> Dataset:
  """The dataset called ``name``; ValueError listing the names otherwise."""
  datasets = DATASETS if datasets is None else datasets
  if name not in datasets:
    raise ValueError(f"unknown dataset {name!r}; `leut fetch --list` shows: {', '.join(datasets)}")
  return datasets[name]
