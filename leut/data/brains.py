"""The brain datasets leut scores against, by the name ``config.data.brain`` gives them.

  things_fmri         human fMRI, ROIs V1 V2 V3 V4 LOC IT, 3 subjects (``things_fmri``, ``things_fmri_responses``)
  majajhong2015       macaque V4 and IT sites, 2 animals (``brainscore_assembly``)
  freemanziemba2013   macaque V1 and V2 cells, pooled over animals (``brainscore_assembly``)
  tvsd                macaque V1, V4 and IT multi-unit sites, 2 monkeys, THINGS images (``tvsd``)

``load_responses`` gives any of them as ``ResponseData`` (responses, reliabilities, the dataset's split, images);
``ResponseData.to_brain_data()`` gives the RDMs the RSA pipeline consumes. ``synthetic_release`` writes (once) and
returns the synthetic stand-in of a macaque dataset under the synthetic-default folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from leut.data.brainscore_assembly import load_brainscore_assembly
from leut.data.responses import ResponseData
from leut.data.synthetic import ensure_default
from leut.data.synthetic_macaque import MACAQUE_RELEASES, ensure_macaque
from leut.data.things_fmri_responses import load_things_fmri_responses
from leut.data.tvsd import load_tvsd

__all__ = ["BRAINS", "MACAQUE_RELEASES", "load_responses", "synthetic_release"]

BRAINS = ("things_fmri", *MACAQUE_RELEASES)


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
