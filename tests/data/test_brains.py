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


def _toy_responses():
  """6 stimuli of concepts b a b c a c; neuroids (roi, subject): (IT, m1) x2, (V4, m2) x2, (V4, m1) x2, (IT, m2)."""
  import pandas as pd

  from leut.data.responses import ResponseData

  rois = ["IT", "IT", "V4", "V4", "V4", "V4", "IT"]
  subs = ["m1", "m1", "m2", "m2", "m1", "m1", "m2"]
  table = pd.DataFrame({"roi": rois, "subject": subs, "neuroid_id": list("abcdefg"), "reliability": np.nan})
  stimuli = ("b_2", "a_9", "b_1", "c_1", "a_3", "c_0")
  concepts = ("b", "a", "b", "c", "a", "c")
  values = np.arange(42, dtype=np.float32).reshape(6, 7)
  return ResponseData("toy", stimuli, concepts, values, table, None)


def test_rsa_responses_orders_neuroids_by_the_configs_rois_then_animals():
  from leut.data.brains import rsa_responses

  got = rsa_responses(_toy_responses(), rois=["V4", "IT"], subjects=["m1", "m2"])
  assert list(got.neuroids.neuroid_id) == list("efcdabg")
  np.testing.assert_array_equal(got.responses_SxN[:, 0], np.arange(6) * 7 + 4)  # column e
  only = rsa_responses(_toy_responses(), rois=["IT"], subjects=["m2"])
  assert list(only.neuroids.neuroid_id) == ["g"] and only.subjects == ("m2",)


def test_rsa_responses_picks_one_stimulus_per_concept_and_spaces_a_subset_evenly():
  from leut.data.brains import rsa_responses

  firsts = rsa_responses(_toy_responses(), rois=["V4"], one_per_concept=True)
  assert firsts.stimuli == ("a_3", "b_1", "c_0")  # concepts sorted, each one's alphabetically first stimulus
  np.testing.assert_array_equal(
    firsts.responses_SxN[:, 0], np.array([4, 2, 5]) * 7 + 4
  )  # column e: V4 of m1, the first animal
  spaced = rsa_responses(_toy_responses(), rois=["V4"], n_stimuli=3)
  assert spaced.stimuli == ("b_2", "b_1", "c_0")  # rows 0, 2 (2.5 rounded half to even), 5


def test_rsa_responses_refuses_an_animal_the_dataset_lacks_naming_its_animals():
  from leut.data.brains import rsa_responses
  from leut.errors import ConfigError

  with pytest.raises(ConfigError, match=r"data.subjects \['m3'\] are not animals of data.brain='toy'.*'m1', 'm2'"):
    rsa_responses(_toy_responses(), rois=["V4"], subjects=["m3"])
