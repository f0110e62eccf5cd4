"""Command line: `leut run | evaluate | report | brain-rdms`.

leut run CONFIG[:arg] --workdir DIR [--config.field=value ...]   train, checkpoint, evaluate, report
leut evaluate --workdir DIR [--config.field=value ...]           re-score the checkpoints already there
leut report --workdir DIR                                        redraw tables, figures and summary.md
leut brain-rdms --things-fmri DIR --out OUT [...]                precompute per-subject ROI RDMs
leut fetch --list | NAME [--dest DIR] [--dry-run] | --verify NAME DIR   download / verify public datasets
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def _split_overrides(argv):
  overrides = [a for a in argv if a.startswith("--config.")]
  rest = [a for a in argv if not a.startswith("--config.")]
  return rest, overrides


def _workdir_config(workdir: Path, overrides):
  from leut import config as config_lib

  path = workdir / "config.json"
  if not path.exists():
    raise SystemExit(f"leut: {workdir} has no config.json; is it a workdir made by `leut run`?")
  saved = json.loads(path.read_text())
  config = config_lib.with_defaults(saved)
  for item in overrides:
    config_lib.apply_override(config, item)
  config_lib.check_compatible(saved, config_lib.to_dict(config), workdir)
  return config


def main(argv=None) -> int:
  from leut import distributed

  if distributed.maybe_initialize():  # multi-host only when LEUT_JAX_INIT=1
    print(distributed.describe(), file=sys.stderr)
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv and argv[0] == "brain-rdms":
    from leut.data.brain_rdm_export import brain_rdms_main

    return brain_rdms_main(argv[1:]) or 0
  if argv and argv[0] == "fetch":
    from leut.fetch.cli import fetch_main

    return fetch_main(argv[1:])
  rest, overrides = _split_overrides(argv)
  parser = argparse.ArgumentParser(prog="leut", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  p_run = sub.add_parser("run", help="train, checkpoint, evaluate and report")
  p_run.add_argument("config", help="config file, e.g. experiments/quickstart.py (optionally FILE:arg)")
  p_run.add_argument("--workdir", required=True, type=Path)
  p_run.add_argument("--no-progress", action="store_true")
  for name, help_ in (("evaluate", "re-score existing checkpoints"), ("report", "redraw figures and summary")):
    p = sub.add_parser(name, help=help_)
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--no-progress", action="store_true")
  sub.add_parser("brain-rdms", help="precompute brain RDMs from THINGS-fMRI (see `leut brain-rdms --help`)")
  sub.add_parser("fetch", help="download or verify public datasets (see `leut fetch --help`)")
  args = parser.parse_args(rest)

  from leut import config as config_lib
  from leut import experiment, report

  try:
    if args.command == "run":
      config = config_lib.load(args.config, overrides)
      command = " ".join(["leut", *(shlex.quote(a) for a in argv)])
      experiment.run(config, args.workdir, progress=not args.no_progress, command=command)
    elif args.command == "evaluate":
      config = _workdir_config(args.workdir, overrides)
      experiment.evaluate(config, args.workdir, progress=not args.no_progress)
    elif args.command == "report":
      report.write_report(args.workdir, _workdir_config(args.workdir, overrides))
  except (FileNotFoundError, ValueError, KeyError) as err:
    print(f"leut {args.command}: error: {err}", file=sys.stderr)
    return 2
  print(f"leut {args.command}: results in {args.workdir.absolute()} (see {args.workdir / 'summary.md'})")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
