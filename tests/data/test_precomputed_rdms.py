"""Precomputed RDM layout: round trip through the writer, the CLI, and errors."""

from __future__ import annotations

import numpy as np
import pytest

from leut.data import DataFormatError, MissingDatasetError, load_brain_rdms
from leut.data.brain_rdm_export import brain_rdms_main
from leut.data.precomputed_rdms import load_precomputed_rdms, write_precomputed_rdms


def test_cli_writes_the_published_layout_and_it_round_trips(tiny_release, tmp_path, capsys):
  root, _ = tiny_release
  out = tmp_path / "out"
  assert (
    brain_rdms_main(
      [
        "--things-fmri",
        str(root),
        "--out",
        str(out),
        "--rois",
        "V1",
        "LOC",
        "--stimuli",
        "5",
        "--zscore",
        "run",
        "--no-progress",
      ]
    )
    == 0
  )
  assert "2 ROIs x 2 subjects of 5x5" in capsys.readouterr().out
  assert sorted(p.name for p in out.glob("fmri_rdm_*")) == [
    "fmri_rdm_LOC_sub-01.npy",
    "fmri_rdm_LOC_sub-02.npy",
    "fmri_rdm_V1_sub-01.npy",
    "fmri_rdm_V1_sub-02.npy",
  ]
  assert (out / "stim_order_sub-01.txt").read_text().split() == [
    "apple_01s.jpg",
    "bee_01s.jpg",
    "cat_01s.jpg",
    "dog_01s.jpg",
    "egg_01s.jpg",
  ]
  direct = load_brain_rdms(root, rois=("V1", "LOC"), zscore="run", n_stimuli=5, progress=False)
  back = load_precomputed_rdms(out, rois=["V1", "LOC"])
  assert back.stimuli == direct.stimuli and back.subjects == direct.subjects
  assert back.concepts == ("apple", "bee", "cat", "dog", "egg")
  np.testing.assert_array_equal(back.rdms_RxJxSxS, direct.rdms_RxJxSxS)
  np.testing.assert_array_equal(back.runs_JxS, direct.runs_JxS)


def test_without_run_files_runs_are_distinct_placeholders(tiny_release, tmp_path):
  root, _ = tiny_release
  brain = load_brain_rdms(root, rois=("IT",), progress=False)
  out = write_precomputed_rdms(brain, tmp_path / "p")
  for f in out.glob("stim_runs_*.txt"):
    f.unlink()
  back = load_precomputed_rdms(out, rois=("IT",), subjects=[1, 2])
  np.testing.assert_array_equal(back.runs_JxS, [-(1 + np.arange(7))] * 2)


def test_errors_name_the_file(tiny_release, tmp_path):
  root, _ = tiny_release
  out = write_precomputed_rdms(load_brain_rdms(root, rois=("IT",), progress=False), tmp_path / "p")
  with pytest.raises(MissingDatasetError, match=r"fmri_rdm_V1_sub-01\.npy"):
    load_precomputed_rdms(out, rois=("V1",))
  np.save(out / "fmri_rdm_IT_sub-02.npy", np.zeros((6, 6), np.float32))
  with pytest.raises(DataFormatError, match=r"fmri_rdm_IT_sub-02\.npy: shape \(6, 6\)"):
    load_precomputed_rdms(out, rois=("IT",))
  lines = (out / "stim_order_sub-02.txt").read_text().split()
  (out / "stim_order_sub-02.txt").write_text("\n".join(lines[::-1]))
  with pytest.raises(DataFormatError, match=r"stim_order_sub-02\.txt: mismatched stimulus orders"):
    load_precomputed_rdms(out, rois=("IT",))
  with pytest.raises(MissingDatasetError, match="brain_rdms_dir"):
    load_precomputed_rdms(tmp_path / "none")


def _precomputed(tiny_release, tmp_path):
  root, _ = tiny_release
  return write_precomputed_rdms(load_brain_rdms(root, rois=("IT",), progress=False), tmp_path / "p")


def test_duplicate_names_in_a_stimulus_order_file(tiny_release, tmp_path):
  out = _precomputed(tiny_release, tmp_path)
  for sub in ("sub-01", "sub-02"):
    lines = (out / f"stim_order_{sub}.txt").read_text().split()
    (out / f"stim_order_{sub}.txt").write_text("\n".join(lines[:-1] + [lines[0]]))
  with pytest.raises(DataFormatError, match=r"stim_order_sub-01\.txt.*apple_01s\.jpg.*twice"):
    load_precomputed_rdms(out, rois=("IT",))


@pytest.mark.parametrize("damage", ["similarity", "asymmetric"])
def test_a_matrix_that_is_not_an_rdm_is_refused(tiny_release, tmp_path, damage):
  out = _precomputed(tiny_release, tmp_path)
  rdm = np.load(out / "fmri_rdm_IT_sub-02.npy")
  if damage == "similarity":
    bad, match = 1.0 - rdm, "diagonal"  # a correlation matrix: ones on the diagonal
  else:
    bad, match = rdm + np.triu(np.full_like(rdm, 0.1), 1), "symmetric"
  np.save(out / "fmri_rdm_IT_sub-02.npy", bad)
  with pytest.raises(DataFormatError, match=rf"fmri_rdm_IT_sub-02\.npy.*{match}"):
    load_precomputed_rdms(out, rois=("IT",))


def test_a_missing_precomputed_rdm_is_described_as_such(tiny_release, tmp_path):
  out = _precomputed(tiny_release, tmp_path)
  with pytest.raises(MissingDatasetError) as caught:
    load_precomputed_rdms(out, rois=("V1",))
  msg = str(caught.value)
  assert "fmri_rdm_V1_sub-01.npy" in msg and "leut brain-rdms" in msg and "data.brain_rdms_dir" in msg
  assert "single-trial betas" not in msg and "figshare" not in msg.lower()
