"""The brain datasets leut scores against, by the name ``config.data.brain`` gives them.

  things_fmri         human fMRI, ROIs V1 V2 V3 V4 LOC IT, 3 subjects (``things_fmri``, ``things_fmri_responses``)
  majajhong2015       macaque V4 and IT sites, 2 animals (``brainscore_assembly``)
  freemanziemba2013   macaque V1 and V2 cells, pooled over animals (``brainscore_assembly``)
  tvsd                macaque V1, V4 and IT multi-unit sites, 2 monkeys, THINGS images (``tvsd``)

``load_responses`` gives any of them as ``ResponseData`` (responses, reliabilities, the dataset's split, images);
``ResponseData.to_brain_data()`` gives the RDMs the RSA pipeline consumes. ``synthetic_release`` writes (once) and
returns the synthetic stand-in of a macaque dataset under the synthetic-default folder. ``REGIONS``,
``check_regions`` and ``rsa_responses`` choose what of a macaque dataset the RSA pipeline scores (``leut.experiment``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from leut.data.brainscore_assembly import ASSEMBLIES, load_brainscore_assembly
from leut.data.responses import ResponseData
from leut.data.synthetic import ensure_default
from leut.data.synthetic_macaque import MACAQUE_RELEASES, ensure_macaque
from leut.data.things_fmri_responses import load_things_fmri_responses
from leut.data.tvsd import REGIONS as TVSD_REGIONS
from leut.data.tvsd import load_tvsd
from leut.errors import ConfigError

__all__ = [
  "BRAINS",
  "MACAQUE_RELEASES",
  "REGIONS",
  "check_regions",
  "load_responses",
  "rsa_responses",
  "synthetic_release",
]

BRAINS = ("things_fmri", *MACAQUE_RELEASES)
# The regions (leut's ``roi``) each macaque dataset records; THINGS-fMRI's ROIs are columns of its voxel table.
REGIONS = {
  "majajhong2015": ASSEMBLIES["majajhong2015"].regions,
  "freemanziemba2013": ASSEMBLIES["freemanziemba2013"].regions,
  "tvsd": TVSD_REGIONS,
}


def _check(brain: str) -> None:
  if brain not in BRAINS:
    raise ValueError(f"config field data.brain: unknown brain dataset {brain!r}; choose one of {BRAINS}")


def load_responses(
  brain: str, brain_dir: os.PathLike | str, *, things_images_dir: os.PathLike | str | None = None, **options
) -> ResponseData:
  """Responses of dataset ``brain`` read from ``brain_dir`` (its release folder).

  ``things_images_dir`` is needed for the datasets on THINGS images (things_fmri, tvsd); ``options`` go to the
  dataset's loader (e.g. ``rois``/``regions``, ``subjects``, ``stimuli``).
  """
  _check(brain)
  if brain == "things_fmri":
    return load_things_fmri_responses(brain_dir, things_images_dir, **options)
  if brain == "tvsd":
    return load_tvsd(brain_dir, things_images_dir, **options)
  return load_brainscore_assembly(brain_dir, brain, **options)


def synthetic_release(brain: str, synthetic_dir: os.PathLike | str) -> tuple[Path, Path]:
  """(release folder, THINGS images folder) of the synthetic stand-in of ``brain``, written on first use.

  The THINGS images folder is the synthetic default's (used by things_fmri and tvsd; the Brain-Score datasets carry
  their own stimulus sets).
  """
  _check(brain)
  default = ensure_default(synthetic_dir)
  if brain == "things_fmri":
    return default.things_fmri_dir, default.things_images_dir
  return ensure_macaque(synthetic_dir, brain), default.things_images_dir


def check_regions(brain: str, rois: Sequence[str]) -> None:
  """``data.rois`` against the regions of macaque dataset ``brain``, before any file is read.

  Raises:
    ConfigError: naming the ROIs the dataset lacks and the valid ones.
  """
  valid = REGIONS[brain]
  unknown = [r for r in rois if r not in valid]
  if unknown:
    raise ConfigError(
      f"data.rois {unknown} are not regions of data.brain={brain!r}; its regions are {list(valid)}: "
      f"set --config.data.rois={','.join(valid)} (or a subset)"
    )


def _concept_firsts(resp: ResponseData) -> np.ndarray:
  """Rows of the alphabetically first stimulus of each concept, concepts sorted (``things_fmri.select_stimuli``)."""
  first: dict[str, tuple[str, int]] = {}
  for i, (s, c) in enumerate(zip(resp.stimuli, resp.concepts)):
    if c not in first or s < first[c][0]:
      first[c] = (s, i)
  return np.array([first[c][1] for c in sorted(first)], np.int64)


def rsa_responses(
  resp: ResponseData,
  *,
  rois: Sequence[str],
  subjects: Sequence[str] | None = None,
  one_per_concept: bool = False,
  n_stimuli: int | None = None,
) -> ResponseData:
  """The part of a macaque dataset the RSA pipeline scores: neuroids of ``rois`` (in that order) and ``subjects``
  (animals; all when None); with ``one_per_concept``, each concept's alphabetically first stimulus, concepts sorted
  (as THINGS-fMRI's ``per_concept``); with ``n_stimuli``, that many stimuli evenly spaced over that order (so a
  subset still spans every object or texture family, which the Brain-Score sets list consecutively).

  Raises:
    ConfigError: a subject (``data.subjects``) the dataset does not have, naming the ones it has.
  """
  if subjects:
    wanted = [str(s) for s in subjects]
    unknown = [s for s in wanted if s not in resp.subjects]
    if unknown:
      raise ConfigError(
        f"data.subjects {unknown} are not animals of data.brain={resp.dataset!r}; its animals are {list(resp.subjects)}"
      )
  else:
    wanted = list(resp.subjects)
  roi_N, subject_N = resp.neuroids["roi"].to_numpy(), resp.neuroids["subject"].to_numpy()
  order = [np.flatnonzero((roi_N == r) & (subject_N == s)) for r in rois for s in wanted]
  cols = np.concatenate(order) if order else np.zeros(0, np.int64)
  out = dataclasses.replace(
    resp, responses_SxN=resp.responses_SxN[:, cols], neuroids=resp.neuroids.iloc[cols].reset_index(drop=True)
  )
  if one_per_concept:
    out = out.take_stimuli(_concept_firsts(out))
  if n_stimuli and n_stimuli < len(out.stimuli):
    out = out.take_stimuli(np.round(np.linspace(0, len(out.stimuli) - 1, n_stimuli)).astype(np.int64))
  return out
