"""Command line: `leut run | evaluate | report | score-features | brain-rdms | fetch`.

leut run CONFIG[:arg] --workdir DIR [--config.field=value ...]   train, checkpoint, evaluate, report
leut evaluate --workdir DIR [--config.field=value ...]           re-score the checkpoints already there
leut report --workdir DIR [--config.report.field=value ...]      redraw tables, figures and summary.md
leut score-features FEATURES --workdir DIR [--name NAME] [--config.data.*=...]   score features computed elsewhere
leut brain-rdms --things-fmri DIR --out OUT [...]                precompute per-subject ROI RDMs
leut fetch --list | NAME [--dest DIR] [--dry-run] | --verify NAME DIR   download / verify public datasets

leut's own errors (`leut.errors.LeutError`: a bad config field, a missing file, a workdir in use) print as one line,
`leut <command>: error: <what and how to fix it>`, with exit status 2; `--debug` adds their traceback. Any other
exception is a bug or an environment failure (an I/O error, out of memory) and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import traceback
import warnings
from pathlib import Path


def _split_overrides(argv):
  overrides = [a for a in argv if a.startswith("--config.")]
  rest = [a for a in argv if not a.startswith("--config.")]
  return rest, overrides


def _workdir_config(workdir: Path, overrides):
  """The config a workdir was made with (config.json, with fields added to leut since filled from defaults), plus
  `overrides`, which must not change training."""
  from leut import config as config_lib
  from leut import workdir as workdir_lib

  saved, _ = workdir_lib.read_config(workdir_lib.Workdir(workdir))
  config = config_lib.with_defaults(saved)
  for item in overrides:
    config_lib.apply_override(config, item)
  config_lib.check_compatible(saved, config_lib.to_dict(config), workdir)
  return config


@contextlib.contextmanager
def _leut_warnings_as_lines():
  """Show leut's own warnings as one `leut: warning: ...` line (other warnings keep Python's format)."""
  from leut.errors import LeutWarning

  default = warnings.formatwarning

  def format_warning(message, category, filename, lineno, line=None):
    if issubclass(category, LeutWarning):
      return f"leut: warning: {message}\n"
    return default(message, category, filename, lineno, line)

  warnings.formatwarning = format_warning
  try:
    yield
  finally:
    warnings.formatwarning = default


def _error(command: str, err: Exception, *, debug: bool) -> int:
  """Print one of leut's own errors as one line (after its traceback with --debug); the exit status 2."""
  if debug:
    traceback.print_exception(err)
  message = " ".join(str(err).split("\n"))
  print(f"leut {command}: error: {message}", file=sys.stderr)
  return 2


def main(argv=None) -> int:
  from leut import distributed

  if distributed.maybe_initialize():  # multi-host only when LEUT_JAX_INIT=1
    print(distributed.describe(), file=sys.stderr)
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv and argv[0] == "brain-rdms":
    from leut.data.brain_rdm_export import brain_rdms_main
    from leut.errors import LeutError

    try:
      return brain_rdms_main([a for a in argv[1:] if a != "--debug"]) or 0
    except LeutError as err:
      return _error("brain-rdms", err, debug="--debug" in argv)
  if argv and argv[0] == "fetch":
    from leut.errors import LeutError
    from leut.fetch.cli import fetch_main

    try:
      return fetch_main([a for a in argv[1:] if a != "--debug"])
    except LeutError as err:
      return _error("fetch", err, debug="--debug" in argv)
  rest, overrides = _split_overrides(argv)
  parser = argparse.ArgumentParser(prog="leut", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--workdir", required=True, type=Path)
  common.add_argument("--no-progress", action="store_true")
  common.add_argument("--debug", action="store_true", help="show the traceback of leut's own errors too")
  sub = parser.add_subparsers(dest="command", required=True)
  p_run = sub.add_parser("run", parents=[common], help="train, checkpoint, evaluate and report")
  p_run.add_argument("config", help="config file, e.g. experiments/quickstart.py (optionally FILE:arg)")
  p_run.add_argument(
    "--train-only", action="store_true", help="stop after the checkpoints; score them later with `leut evaluate`"
  )
  sub.add_parser("evaluate", parents=[common], help="re-score existing checkpoints")
  sub.add_parser("report", parents=[common], help="redraw figures and summary")
  p_ext = sub.add_parser("score-features", parents=[common], help="score features computed elsewhere (.npz/.h5)")
  p_ext.add_argument("features", type=Path, help="one stimuli x units array per layer and a `stimuli` name array")
  p_ext.add_argument("--name", default="", help="the rule column of its rows (default: the file name's stem)")
  sub.add_parser("brain-rdms", help="precompute brain RDMs from THINGS-fMRI (see `leut brain-rdms --help`)")
  sub.add_parser("fetch", help="download or verify public datasets (see `leut fetch --help`)")
  args = parser.parse_args(rest)

  from leut import config as config_lib
  from leut import experiment
  from leut import workdir as workdir_lib
  from leut.errors import LeutError

  command = " ".join(["leut", *(shlex.quote(a) for a in argv if a != "--debug")])
  progress = not args.no_progress
  with _leut_warnings_as_lines():
    try:
      if args.command == "run":
        config = config_lib.load(args.config, overrides)
        experiment.run(config, args.workdir, progress=progress, command=command, train_only=args.train_only)
        if args.train_only:
          print(f"leut run: checkpoints in {args.workdir.absolute()}; score them with `leut evaluate --workdir DIR`")
          return 0
      elif args.command == "evaluate":
        config = _workdir_config(args.workdir, overrides)
        experiment.evaluate(config, args.workdir, progress=progress, command=command)
      elif args.command == "score-features":
        from leut import score_features

        if workdir_lib.Workdir(args.workdir).config.exists():
          config = _workdir_config(args.workdir, overrides)
        else:
          config = config_lib.with_defaults({})
          for item in overrides:
            config_lib.apply_override(config, item)
        name = args.name or args.features.stem
        score_features.score_features(config, args.workdir, args.features, name, progress=progress)
      elif args.command == "report":
        config_lib.report_only_overrides(overrides)
        experiment.write_report(_workdir_config(args.workdir, overrides), args.workdir)
    except LeutError as err:
      return _error(args.command, err, debug=args.debug)
  summary = workdir_lib.Workdir(args.workdir).summary
  print(f"leut {args.command}: results in {args.workdir.absolute()} (see {summary})")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
