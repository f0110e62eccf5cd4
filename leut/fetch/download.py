"""Resumable, verified downloads with the standard library (urllib) and a byte progress bar.

A file is written to ``<name>.part`` next to its destination; a dropped connection is resumed with an HTTP
``Range: bytes=<received>-`` request (a server that ignores it and answers 200 restarts the file); the finished
file is checked against its published size and checksum and only then renamed into place. A mismatch removes the
download and says so.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from leut.errors import LeutError
from leut.fetch.manifest import Dataset, RemoteFile
from leut.fetch.verify import check_file

__all__ = ["FetchError", "download_file", "fetch_dataset", "file_url"]

_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError)


class FetchError(LeutError, RuntimeError):
  """A download failed or did not verify; the message names the file and what to do."""


def file_url(file: RemoteFile, base_url: str | None) -> str:
  """The file's own URL, or ``<base_url>/<its destination path>`` for a mirror."""
  return file.url if not base_url else base_url.rstrip("/") + "/" + file.path


def _open(url: str, start: int, timeout: float):
  headers = {"User-Agent": "leut-fetch"}
  if start:
    headers["Range"] = f"bytes={start}-"
  return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def download_file(
  file: RemoteFile,
  dest: os.PathLike | str,
  *,
  base_url: str | None = None,
  progress: bool = True,
  retries: int = 5,
  timeout: float = 30.0,
  chunk: int = 1 << 16,
) -> Path:
  """Downloads ``file`` into ``dest``/``file.path``, resuming interrupted transfers, and verifies it.

  Raises:
    FetchError: the server refused (HTTP error), the connection kept failing (``retries`` times; the partial file
      is kept so that a new run resumes), or the result does not match its size or checksum (it is removed).
  """
  url = file_url(file, base_url)
  target = Path(dest) / file.path
  target.parent.mkdir(parents=True, exist_ok=True)
  part = target.with_name(target.name + ".part")
  total = file.size
  have = part.stat().st_size if part.exists() else 0
  bar = tqdm(
    total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=file.path, disable=not progress
  )
  failures = 0
  try:
    while total is None or have < total:
      try:
        with _open(url, have, timeout) as resp:
          length = resp.headers.get("Content-Length")
          if resp.status == 206:
            start = int(resp.headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
            if start != have:
              raise FetchError(f"{url}: asked for bytes from {have}, the server sent from {start}")
          elif have:  # the server ignored the Range header: start again
            have = 0
            bar.reset(total=total)
          expected = None if length is None else have + int(length)
          if total is None and expected is not None:
            total = expected
            bar.total = total
          with open(part, "ab" if have else "wb") as out:
            while block := resp.read(chunk):
              out.write(block)
              have += len(block)
              bar.update(len(block))
          if expected is None or have >= expected:
            break
          raise ConnectionError(f"connection closed after {have} of {expected} bytes")
      except urllib.error.HTTPError as e:
        if e.code == 416 and total is not None and have >= total:
          break  # nothing left to send: the file is complete
        raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from None
      except _NETWORK_ERRORS as e:
        failures += 1
        if failures > retries:
          raise FetchError(
            f"{url}: {e}; gave up after {retries} retries. {part} keeps the {have} bytes received: run the same "
            "command again to resume."
          ) from None
  finally:
    bar.close()
  check = check_file(part, file)
  if not check.ok:
    part.unlink(missing_ok=True)
    raise FetchError(f"{target}: {check.message}. The downloaded file did not verify and was removed.")
  os.replace(part, target)
  return target


def fetch_dataset(
  ds: Dataset,
  dest: os.PathLike | str,
  *,
  base_url: str | None = None,
  parts=None,
  dry_run: bool = False,
  progress: bool = True,
  out: Callable[[str], None] = print,
) -> list[Path]:
  """Downloads every file of ``ds`` (or of the chosen ``parts``) that is not already there and verified, then prints
  the config overrides that point leut to ``dest``. ``dry_run`` prints the plan and touches nothing."""
  dest = Path(dest)
  files = [f for f in ds.files if not parts or f.part in parts]
  if ds.gated:
    out(ds.gated.format(dest=dest))
    return []
  if not files:
    have = sorted({f.part for f in ds.files})
    raise FetchError(f"{ds.name}: no files for parts {sorted(parts or [])}; its parts: {have}")
  done = []
  for f in files:
    size = "size unknown" if f.size is None else f"{f.size:,} bytes"
    checksum = f.checksum or "no published checksum"
    if dry_run:
      out(f"would download {file_url(f, base_url)}\n  -> {dest / f.path} ({size}; {checksum})")
      continue
    target = dest / f.path
    if target.exists():
      check = check_file(target, f)
      if check.ok:
        out(f"{target}: already there, {check.message}")
        done.append(target)
        continue
      out(f"{target}: {check.message}; downloading it again")
    done.append(download_file(f, dest, base_url=base_url, progress=progress))
    out(f"{done[-1]}: {check_file(done[-1], f).message}")
  if dry_run:
    out("dry run: nothing was downloaded")
  out(f"use: {ds.overrides.format(dest=dest.absolute())}")
  return done
