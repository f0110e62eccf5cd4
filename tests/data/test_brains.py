"""The brain-dataset registry: every dataset as ResponseData, THINGS-fMRI responses consistent with its RDM loader,
and `data.brain` an evaluation-only config field."""

from __future__ import annotations

import numpy as np
import pytest

from leut import config as config_lib
from leut.data import BRAINS, load_brain_rdms, load_responses
from leut.data.errors import DataFormatError
from leut.defaults import protocol_config


@pytest.mark.parametrize("zscore", ["all", "run"])
def test_things_fmri_responses_give_the_loaders_rdms(tiny_release, zscore):
  root, subs = tiny_release
  rois = ("V1", "V4", "LOC", "IT")
  data = load_responses("things_fmri", root, rois=rois, zscore=zscore)
  want = load_brain_rdms(root, rois=rois, zscore=zscore, progress=False)
  got = data.to_brain_data()
  assert got.stimuli == want.stimuli and got.rois == want.rois and got.subjects == want.subjects
  np.testing.assert_allclose(got.rdms_RxJxSxS, want.rdms_RxJxSxS, atol=2e-6)
  _, vox, _ = subs["sub-01"]
  v1 = data.mask("V1", "sub-01")
  rows = vox[vox.V1 == 1]
  np.testing.assert_array_equal(data.neuroids.neuroid_id[v1], rows.voxel_id.astype(str))
  np.testing.assert_allclose(data.neuroids.reliability[v1], np.sqrt(rows.nc_singletrial / 100))


def test_things_fmri_test_stimuli_need_the_test_noise_ceiling(tiny_release):
  root, _ = tiny_release
  with pytest.raises(DataFormatError, match="VoxelMetadata.csv: no 'nc_testset' column"):
    load_responses("things_fmri", root, rois=("V1",), stimuli="test")


def test_unknown_brain_names_the_config_field(tmp_path):
  with pytest.raises(ValueError, match="data.brain: unknown brain dataset 'macaque'"):
    load_responses("macaque", tmp_path)
  assert BRAINS == ("things_fmri", "majajhong2015", "freemanziemba2013", "tvsd")


def test_brain_choice_is_evaluation_only(tmp_path):
  current = config_lib.to_dict(protocol_config())
  assert current["data"]["brain"] == "things_fmri" and current["eval"]["metrics"] == ["rsa"]
  saved = config_lib.to_dict(protocol_config())
  del saved["data"]["brain"], saved["data"]["brain_dir"]  # a workdir made before the fields existed
  config_lib.check_compatible(saved, current, tmp_path)
  saved["data"]["brain"] = "tvsd"
  config_lib.check_compatible(saved, current, tmp_path)
