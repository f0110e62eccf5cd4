"""Synthetic macaque releases are written lazily, once, next to the default, without touching it."""

from __future__ import annotations

import json

from leut.data import synthetic, synthetic_macaque
from leut.data.brains import synthetic_release


def test_written_only_when_asked_for_and_only_once(tmp_path, monkeypatch):
  params = json.loads(json.dumps(synthetic.DEFAULT_PARAMS))
  params["cifar"].update(n_train=20, n_test=10)
  params["things"].update(n_concepts=20, n_test_images=4, image_px=32, voxels_per_roi=20)
  monkeypatch.setattr(synthetic, "DEFAULT_PARAMS", params)
  monkeypatch.setattr(synthetic_macaque, "DEFAULT_PARAMS", params)
  default = synthetic.ensure_default(tmp_path)
  assert not any((tmp_path / n).exists() for n in synthetic_macaque.MACAQUE_RELEASES)  # the quickstart's cost
  before = {p: p.stat().st_mtime_ns for p in default.things_fmri_dir.rglob("*") if p.is_file()}
  root, images = synthetic_release("freemanziemba2013", tmp_path)
  assert root == tmp_path / "freemanziemba2013" and images == default.things_images_dir
  assert not (tmp_path / "majajhong2015").exists() and not (tmp_path / "tvsd").exists()
  stamp = (root / "leut_macaque.json").stat().st_mtime_ns
  assert synthetic_release("freemanziemba2013", tmp_path)[0] == root
  assert (root / "leut_macaque.json").stat().st_mtime_ns == stamp
  tvsd, _ = synthetic_release("tvsd", tmp_path)
  assert (tvsd / "monkeyN" / "_logs" / "things_imgs.mat").is_file()
  after = {p: p.stat().st_mtime_ns for p in default.things_fmri_dir.rglob("*") if p.is_file()}
  assert after == before  # the fMRI release is read, never rewritten
