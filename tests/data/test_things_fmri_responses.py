"""One read of each subject's betas gives both the RSA RDMs and the CKA/encoding responses, exactly as the two
loaders that read them separately give them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leut.data import response_h5
from leut.data.errors import DataFormatError
from leut.data.things_fmri import load_brain_rdms
from leut.data.things_fmri_responses import load_things_fmri_rdms_and_responses, load_things_fmri_responses


@pytest.fixture
def betas_reads(monkeypatch):
  """The names of the response files whose betas are read, one entry per read."""
  reads, read_rows = [], response_h5._read_rows

  def counted(path, *args):
    reads.append(Path(path).name)
    return read_rows(path, *args)

  monkeypatch.setattr(response_h5, "_read_rows", counted)
  return reads


@pytest.mark.parametrize("zscore", ["all", "run"])
def test_rdms_and_responses_are_the_two_loaders_from_one_read_per_subject(tiny_release, betas_reads, zscore):
  root, _ = tiny_release
  rois = ("V1", "LOC", "IT")
  brain, resp = load_things_fmri_rdms_and_responses(root, rois=rois, zscore=zscore, progress=False)
  assert betas_reads == ["sub-01_ResponseData.h5", "sub-02_ResponseData.h5"]
  want = load_brain_rdms(root, rois=rois, zscore=zscore, progress=False)
  assert (brain.stimuli, brain.concepts, brain.subjects, brain.rois) == (
    want.stimuli,
    want.concepts,
    want.subjects,
    want.rois,
  )
  assert brain.rdms_RxJxSxS.dtype == np.float32
  np.testing.assert_array_equal(brain.rdms_RxJxSxS, want.rdms_RxJxSxS)
  np.testing.assert_array_equal(brain.runs_JxS, want.runs_JxS)
  assert len(set(want.runs_JxS[1])) > 1  # sub-02's trials are shuffled over runs: the runs are not all one
  alone = load_things_fmri_responses(root, rois=rois, zscore=zscore)
  assert (resp.stimuli, resp.concepts) == (alone.stimuli, alone.concepts) == (want.stimuli, want.concepts)
  np.testing.assert_array_equal(resp.responses_SxN, alone.responses_SxN)
  pd.testing.assert_frame_equal(resp.neuroids, alone.neuroids)


def test_a_missing_noise_ceiling_column_is_refused_before_any_betas_are_read(tiny_release, betas_reads):
  root, _ = tiny_release
  with pytest.raises(DataFormatError, match="sub-01_VoxelMetadata.csv: no 'nc_testset' column"):
    load_things_fmri_rdms_and_responses(root, rois=("V1",), stimuli="test", progress=False)
  assert betas_reads == []
