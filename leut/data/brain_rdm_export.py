"""``leut brain-rdms``: build brain RDMs from single-trial betas and save them precomputed.

Example:
  leut brain-rdms --things-fmri /data/things_fmri --out outputs_720 --stimuli 720
"""

from __future__ import annotations

import argparse
from pathlib import Path

from leut.data.precomputed_rdms import write_precomputed_rdms
from leut.data.things_fmri import DEFAULT_ROIS, load_brain_rdms

__all__ = ["brain_rdms_main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
  """The argparse parser of ``leut brain-rdms``."""
  p = argparse.ArgumentParser(prog="leut brain-rdms", description=__doc__.splitlines()[0])
  p.add_argument(
    "--things-fmri",
    required=True,
    type=Path,
    help="THINGS-fMRI folder (Figshare betas_csv or OpenNeuro ds004192 layout)",
  )
  p.add_argument("--out", required=True, type=Path, help="output folder for fmri_rdm_{ROI}_{sub}.npy")
  p.add_argument("--rois", nargs="+", default=list(DEFAULT_ROIS), help="ROI names (default: %(default)s)")
  p.add_argument("--subjects", nargs="+", default=None, help="e.g. sub-01 sub-02 (default: all)")
  p.add_argument(
    "--zscore",
    choices=("all", "run"),
    default="all",
    help="z-score voxels over all trials or within each session x run",
  )
  p.add_argument(
    "--stimuli",
    default="720",
    help="'720' or any N: one image per concept, first N; 'per_concept': all; "
    "'test': test images averaged over repetitions",
  )
  p.add_argument("--no-progress", action="store_true")
  return p


def brain_rdms_main(argv=None) -> int:
  """Runs ``leut brain-rdms`` with ``argv`` (without the sub-command); returns the exit code."""
  args = build_parser().parse_args(argv)
  if args.stimuli == "test":
    mode, n = "test", None
  elif args.stimuli == "per_concept":
    mode, n = "per_concept", None
  elif args.stimuli.isdigit():
    mode, n = "per_concept", int(args.stimuli)
  else:
    raise SystemExit(f"leut brain-rdms: --stimuli must be an integer, 'per_concept' or 'test', not {args.stimuli!r}")
  brain = load_brain_rdms(
    args.things_fmri,
    subjects=args.subjects,
    rois=tuple(args.rois),
    stimuli=mode,
    zscore=args.zscore,
    n_stimuli=n,
    progress=not args.no_progress,
  )
  out = write_precomputed_rdms(brain, args.out)
  print(
    f"wrote {len(brain.rois)} ROIs x {len(brain.subjects)} subjects of "
    f"{len(brain.stimuli)}x{len(brain.stimuli)} RDMs to {out}"
  )
  return 0
