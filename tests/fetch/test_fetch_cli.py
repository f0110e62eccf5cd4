"""`leut fetch`: --list, --dry-run (no request), --verify, the gated THINGS images, the real manifest, and that
nothing but the CLI imports it."""

from __future__ import annotations

import re

from fetch_server import synthetic_dataset

from leut import cli
from leut.fetch import DATASETS, fetch_main
from tests.test_codebase import import_graph, leut_modules

FILES = {"assy_a.nc": b"0123456789" * 100, "image_a.csv": b"stimulus_id,filename\n"}


def test_list_names_every_dataset(capsys):
  assert cli.main(["fetch", "--list"]) == 0
  out = capsys.readouterr().out
  for name in ("cifar10", "things_fmri", "things_images", "majajhong2015", "freemanziemba2013", "tvsd"):
    assert re.search(rf"^{name}\s", out, re.M)
  assert "3 with a published checksum" in out and "parts: sub-01, sub-02, sub-03" in out


def test_dry_run_prints_the_plan_and_sends_nothing(server, tmp_path, capsys):
  ds = synthetic_dataset("demo", FILES)
  dest = tmp_path / "d"
  assert fetch_main(["demo", "--dest", str(dest), "--dry-run", "--base-url", server.url], datasets={"demo": ds}) == 0
  out = capsys.readouterr().out
  assert f"would download {server.url}/assy_a.nc" in out and "nothing was downloaded" in out
  assert server.requests == [] and not dest.exists()


def test_verify_accepts_good_files_and_names_bad_ones(server, tmp_path, capsys):
  server.files.update(FILES)
  ds = synthetic_dataset("demo", FILES)
  datasets = {"demo": ds}
  assert (
    fetch_main(["demo", "--dest", str(tmp_path), "--base-url", server.url, "--no-progress"], datasets=datasets) == 0
  )
  assert fetch_main(["--verify", "demo", str(tmp_path)], datasets=datasets) == 0
  assert "ok   " in capsys.readouterr().out
  (tmp_path / "assy_a.nc").write_bytes(b"1" * 1000)
  (tmp_path / "image_a.csv").unlink()
  assert fetch_main(["--verify", "demo", str(tmp_path)], datasets=datasets) == 1
  out = capsys.readouterr().out
  assert re.search(r"FAIL .*assy_a.nc: sha1 \w+, expected \w+", out) and re.search(r"FAIL .*image_a.csv: missing", out)
  n = len(server.requests)
  assert (
    fetch_main(["demo", "--dest", str(tmp_path), "--base-url", server.url, "--no-progress"], datasets=datasets) == 0
  )
  assert len(server.requests) == n + 2  # both bad files fetched again, then verified
  assert (tmp_path / "assy_a.nc").read_bytes() == FILES["assy_a.nc"]


def test_things_images_are_explained_and_verified_not_downloaded(tmp_path, capsys):
  assert fetch_main(["things_images", "--dest", str(tmp_path)]) == 0
  assert "https://osf.io/jum2f/" in capsys.readouterr().out and not list(tmp_path.iterdir())
  for concept, n in (("aardvark", 2), ("zebra", 1)):
    folder = tmp_path / "object_images" / concept
    folder.mkdir(parents=True)
    for k in range(n):
      (folder / f"{concept}_{k + 1:02d}b.jpg").write_bytes(b"jpg")
  assert fetch_main(["--verify", "things_images", str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert "2 concept folders, 3 images" in out and "--config.data.things_images_dir=" in out
  assert fetch_main(["--verify", "things_images", str(tmp_path / "nowhere")]) == 1


def test_the_manifest_records_only_published_checksums():
  for ds in DATASETS.values():
    for f in ds.files:
      assert f.url.startswith("https://") and f.note
      if f.checksum is not None:
        algorithm, _, digest = f.checksum.partition(":")
        assert {"sha1": 40, "md5": 32}[algorithm] == len(digest) and int(digest, 16) >= 0
  assert DATASETS["cifar10"].files[0].checksum == "md5:c58f30108f718f92721af3b95e74349a"
  assert all(f.checksum is None for f in DATASETS["tvsd"].files + DATASETS["things_fmri"].files)


def test_only_the_command_line_imports_fetch():
  importers = {m for m, deps in import_graph(leut_modules()).items() if any(d.startswith("leut.fetch") for d in deps)}
  assert {m for m in importers if not m.startswith("leut.fetch")} == {"leut.cli"}


def test_the_printed_overrides_name_each_macaque_datasets_own_regions():
  from leut.data.brains import REGIONS
  from leut.fetch.manifest import DATASETS

  for name, regions in REGIONS.items():
    assert f"--config.data.rois={','.join(regions)}" in DATASETS[name].overrides, name
