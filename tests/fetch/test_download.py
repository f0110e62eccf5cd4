"""Downloads from a local server: resume after a dropped connection, a tampered file rejected and removed, a server
that ignores Range, and a partial file resumed by the next run."""

from __future__ import annotations

import os

import pytest
from fetch_server import synthetic_dataset

from leut.fetch import FetchError, download_file, fetch_main

BODY = os.urandom(300_000)
SMALL = b"stimulus_id,filename\na,a.png\n"


def _files():
  return {"assy_test.nc": BODY, "sets/image_test.csv": SMALL}


def test_resumes_after_a_dropped_connection(server, tmp_path, capsys):
  server.files.update(_files())
  server.drop_first.add("assy_test.nc")
  ds = synthetic_dataset("demo", _files())
  assert fetch_main(["demo", "--dest", str(tmp_path), "--base-url", server.url], datasets={"demo": ds}) == 0
  assert (tmp_path / "assy_test.nc").read_bytes() == BODY
  assert (tmp_path / "sets" / "image_test.csv").read_bytes() == SMALL
  assert not list(tmp_path.rglob("*.part"))
  big = [r for p, r in server.requests if p == "assy_test.nc"]
  assert big == [None, f"bytes={len(BODY) // 2}-"]  # the second request asks for the rest only
  out = capsys.readouterr()
  assert "sha1 matches" in out.out and f"--config.data.brain_dir={tmp_path.absolute()}" in out.out
  assert "assy_test.nc" in out.err and "B" in out.err  # the byte progress bar


def test_a_tampered_file_is_rejected_and_removed(server, tmp_path, capsys):
  server.files.update({"assy_test.nc": BODY[:-1] + bytes([BODY[-1] ^ 1]), "sets/image_test.csv": SMALL})
  ds = synthetic_dataset("demo", _files())
  code = fetch_main(["demo", "--dest", str(tmp_path), "--base-url", server.url, "--no-progress"], datasets={"demo": ds})
  assert code == 1
  err = capsys.readouterr().err
  assert "assy_test.nc: sha1" in err and "did not verify and was removed" in err
  assert not (tmp_path / "assy_test.nc").exists() and not list(tmp_path.rglob("*.part"))


def test_a_server_ignoring_range_restarts_the_file(server, tmp_path):
  server.files.update(_files())
  server.drop_first.add("assy_test.nc")
  server.ignore_range = True
  ds = synthetic_dataset("demo", _files())
  download_file(ds.files[0], tmp_path, base_url=server.url, progress=False)
  assert (tmp_path / "assy_test.nc").read_bytes() == BODY


def test_the_next_run_resumes_a_partial_download(server, tmp_path):
  server.files.update(_files())
  server.drop_first.add("assy_test.nc")
  file = synthetic_dataset("demo", _files()).files[0]
  with pytest.raises(FetchError, match="gave up after 0 retries.*keeps the 150000 bytes received"):
    download_file(file, tmp_path, base_url=server.url, progress=False, retries=0)
  assert (tmp_path / "assy_test.nc.part").stat().st_size == len(BODY) // 2
  download_file(file, tmp_path, base_url=server.url, progress=False, retries=0)
  assert (tmp_path / "assy_test.nc").read_bytes() == BODY
  assert server.requests[-1] == ("assy_test.nc", f"bytes={len(BODY) // 2}-")


def test_http_errors_name_the_url(server, tmp_path, capsys):
  ds = synthetic_dataset("demo", {"missing.nc": b"x"})
  code = fetch_main(["demo", "--dest", str(tmp_path), "--base-url", server.url, "--no-progress"], datasets={"demo": ds})
  assert code == 1 and f"{server.url}/missing.nc: HTTP 404" in capsys.readouterr().err
