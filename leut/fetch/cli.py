"""`leut fetch`: list, download and verify the public datasets leut reads (never run by `leut run`).

leut fetch --list
leut fetch NAME [--dest DIR] [--dry-run] [--base-url URL] [--part PART ...] [--no-progress]
leut fetch --verify NAME DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leut.fetch.download import FetchError, fetch_dataset
from leut.fetch.manifest import DATASETS, dataset
from leut.fetch.verify import check_dataset, check_things_images

__all__ = ["fetch_main", "DEFAULT_DEST"]

DEFAULT_DEST = Path("data_cache") / "downloads"


def _list(datasets) -> str:
  lines = []
  for d in datasets.values():
    known = [f.size for f in d.files if f.size is not None]
    size = f", {sum(known) / 1e6:,.0f} MB" if known and len(known) == len(d.files) else ""
    sums = sum(f.checksum is not None for f in d.files)
    if d.gated:
      how = "not downloadable (licence): instructions and --verify"
    else:
      n = len(d.files)
      how = f"{n} file{'s' if n != 1 else ''}{size}, {sums} with a published checksum"
    parts = sorted({f.part for f in d.files if f.part})
    lines.append(f"{d.name:<18} {d.description}\n{'':<18} {how}" + (f"; parts: {', '.join(parts)}" if parts else ""))
  return "\n".join(lines)


def fetch_main(argv=None, *, datasets=None, out=print) -> int:
  """Entry point of `leut fetch`; returns the exit status (0 ok, 1 a file failed to download or verify, 2 usage)."""
  datasets = DATASETS if datasets is None else datasets
  parser = argparse.ArgumentParser(
    prog="leut fetch", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
  )
  parser.add_argument("name", nargs="?", help="dataset to download (see --list)")
  parser.add_argument("folder", nargs="?", type=Path, help="with --verify: the folder to check")
  parser.add_argument("--list", action="store_true", help="list the datasets")
  parser.add_argument("--verify", action="store_true", help="check files already in FOLDER against the manifest")
  parser.add_argument("--dest", type=Path, help=f"destination folder (default {DEFAULT_DEST}/NAME)")
  parser.add_argument("--dry-run", action="store_true", help="print what would be downloaded, download nothing")
  parser.add_argument("--base-url", help="download from this mirror: BASE_URL/<file path> instead of the owners' URLs")
  parser.add_argument("--part", action="append", help="only this part (a subject or monkey; repeatable)")
  parser.add_argument("--no-progress", action="store_true")
  args = parser.parse_args(argv)
  if args.list:
    out(_list(datasets))
    return 0
  if not args.name:
    parser.print_usage(sys.stderr)
    print("leut fetch: error: name a dataset, or use --list", file=sys.stderr)
    return 2
  try:
    ds = dataset(args.name, datasets)
    if args.verify:
      if args.folder is None:
        print("leut fetch: error: --verify needs NAME and FOLDER", file=sys.stderr)
        return 2
      checks = check_things_images(args.folder) if ds.gated else check_dataset(ds, args.folder, args.part)
      for c in checks:
        out(f"{'ok  ' if c.ok else 'FAIL'} {c.path}: {c.message}")
      ok = all(c.ok for c in checks)
      if ok:
        out(f"use: {ds.overrides.format(dest=args.folder.absolute())}")
      return 0 if ok else 1
    dest = args.dest or DEFAULT_DEST / ds.name
    fetch_dataset(
      ds, dest, base_url=args.base_url, parts=args.part, dry_run=args.dry_run, progress=not args.no_progress, out=out
    )
  except ValueError as e:
    print(f"leut fetch: error: {e}", file=sys.stderr)
    return 2
  except FetchError as e:
    print(f"leut fetch: error: {e}", file=sys.stderr)
    return 1
  return 0
