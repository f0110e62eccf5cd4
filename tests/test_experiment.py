"""`leut run` scores the brain dataset `data.brain` names: the quickstart on each synthetic macaque release.

Each synthetic release is simulated from known feature models (`leut.data.synthetic_macaque`): V1 cells/sites from
Gabor energy, V2 from energies and their cross-orientation products, V4 from a mixture of V2 energies and shape, IT
from category. An untrained network represents no category, so its layers align with the visually driven regions
and not with IT; images or rows out of register with the responses would leave every ρ near zero.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from leut import cli, experiment
from leut import config as config_lib
from leut.data.errors import DataFormatError, MissingDatasetError
from leut.data.simulated_brain import ground_truth_rdms
from leut.errors import ConfigError

TINY = [
  "--config.rules=untrained",
  "--config.seeds=3",
  "--config.epochs=0",
  "--config.milestones=0",
  "--config.model.widths=(4,8,8)",
  "--config.model.fc_dim=16",
  "--config.data.train_subset=64",
  "--config.eval.resolutions=32",
  "--config.eval.test_images=64",
  "--config.eval.n_boot=0",
  "--config.eval.best_layer_splits=0",
  "--config.eval.partial_controls=",
  "--config.data.n_stimuli=48",  # all of FreemanZiemba2013, evenly spaced over the others; one S, shared compiles
  "--config.report.figure_formats=png",
  "--no-progress",
]
# dataset -> (its regions, its animals)
DATASETS = {
  "majajhong2015": (["V4", "IT"], ["Chabo", "Tito"]),
  "freemanziemba2013": (["V1", "V2"], ["pooled"]),
  "tvsd": (["V1", "V4", "IT"], ["monkeyF", "monkeyN"]),
}


@pytest.fixture(scope="module", params=sorted(DATASETS))
def scored(request, tmp_path_factory, synthetic_dir):
  """(dataset, rsa.csv) of a tiny quickstart run against the synthetic release of one macaque dataset."""
  brain = request.param
  rois, _ = DATASETS[brain]
  wd = tmp_path_factory.mktemp(f"quickstart_{brain}")
  rc = cli.main(
    [
      "run",
      "experiments/quickstart.py",
      "--workdir",
      str(wd),
      f"--config.data.synthetic_dir={synthetic_dir}",
      f"--config.data.brain={brain}",
      f"--config.data.rois={','.join(rois)}",
      *TINY,
    ]
  )
  assert rc == 0
  return brain, pd.read_csv(wd / "results" / "rsa.csv"), wd


def test_rsa_rows_are_the_datasets_regions_and_animals(scored):
  brain, rsa, _ = scored
  rois, animals = DATASETS[brain]
  assert set(rsa.roi) == set(rois)
  assert set(rsa.subject) == {*animals, "mean"}
  # seeds x layers x regions x (animals + mean) x pair sets, every ρ defined
  assert len(rsa) == 3 * 4 * len(rois) * (len(animals) + 1) * 2
  assert rsa.rho.notna().all()


def _seed_rho(rsa, roi):
  """Per seed, the untrained network's ρ with `roi` (animals' mean RDM) averaged over its layers."""
  rows = rsa[(rsa.roi == roi) & (rsa.subject == "mean") & (rsa.pairs == "all")]
  return rows.groupby("seed").rho.mean()


VISUAL = {"majajhong2015": ["V4"], "freemanziemba2013": ["V1", "V2"], "tvsd": ["V1", "V4"]}


def test_untrained_network_aligns_with_the_visually_driven_regions_not_with_it(scored):
  """Known truth: for every seed, the untrained network aligns positively with each region its simulation drives by
  visual features (V1: Gabor energy; V2: energies and their products; V4: energy and shape), and by more than 0.03
  above the category-driven IT, which it does not represent. Stimulus images out of register with the response
  rows would leave every ρ and every difference near zero."""
  brain, rsa, _ = scored
  it = _seed_rho(rsa, "IT") if "IT" in DATASETS[brain][0] else None
  for roi in VISUAL[brain]:
    rho = _seed_rho(rsa, roi)
    assert len(rho) == 3 and (rho > 0.01).all(), (roi, rho)
    if it is not None:
      assert ((rho - it) > 0.03).all(), (roi, rho, it)
    else:  # FreemanZiemba2013: all 48 stimuli, no category region to compare with
      assert rho.mean() > 0.05, (roi, rho)


# before the tests below, which re-evaluate the fixture's workdir against other brain data
def test_the_scored_rdms_recover_each_regions_simulated_truth(scored):
  """Check (d): results/brain_truth.csv scores each region's noise-free truth RDM (from the release's
  simulation_truth.npz) against the RDMs the run scored, as scipy computes it, and the report's ground-truth check
  passes for every region (a significant positive rho with the animals' mean RDM)."""
  brain, _, wd = scored
  config = cli._workdir_config(wd, [])
  data, _ = experiment.load_brain_and_responses(config, experiment.resolve_data(config), progress=False)
  truth = pd.read_csv(wd / "results" / "brain_truth.csv")
  release = experiment.resolve_data(config).brain_dir
  iu = np.triu_indices(len(data.stimuli), 1)
  for r, roi in enumerate(data.rois):
    t = ground_truth_rdms(release, list(data.stimuli), (roi,))[roi][iu]
    rows = truth[truth.roi == roi].set_index("subject")
    for j, subject in enumerate(data.subjects):
      expected = spearmanr(t, np.asarray(data.rdms_RxJxSxS[r, j], np.float64)[iu])[0]
      np.testing.assert_allclose(rows.loc[subject, "rho"], expected, atol=1e-5)
    mean_rdm = np.asarray(data.rdms_RxJxSxS[r], np.float64).mean(0)[iu]
    np.testing.assert_allclose(rows.loc["mean", "rho"], spearmanr(t, mean_rdm)[0], atol=1e-5)
  checks = pd.read_csv(wd / "results" / "ground_truth.csv")
  d = checks[checks.check == "d"]
  assert sorted(d.roi) == sorted(DATASETS[brain][0]) and d.passed.all(), d
  assert "(d) the scored" in (wd / "summary.md").read_text()


@pytest.mark.parametrize("scored", ["freemanziemba2013"], indirect=True)
def test_leut_evaluate_rescores_the_checkpoints_against_the_brain_data_brain_names(scored):
  _, _, wd = scored
  rc = cli.main(
    ["evaluate", "--workdir", str(wd), "--config.data.brain=majajhong2015", "--config.data.rois=V4,IT", "--no-progress"]
  )
  assert rc == 0
  rsa = pd.read_csv(wd / "results" / "rsa.csv")
  assert set(rsa.roi) == {"V4", "IT"} and set(rsa.subject) == {"Chabo", "Tito", "mean"}
  v4, it = _seed_rho(rsa, "V4"), _seed_rho(rsa, "IT")
  assert ((v4 - it) > 0.03).all(), (v4, it)  # the same truth as the majajhong2015 run's


def _config(brain, *overrides):
  return config_lib.load("experiments/quickstart.py", [f"--config.data.brain={brain}", *overrides])


def test_rois_that_are_not_the_datasets_regions_are_refused_naming_the_valid_ones():
  with pytest.raises(ConfigError, match=r"data.rois \['V2', 'LOC'\] are not regions of data.brain='tvsd'.*V1.*V4.*IT"):
    experiment.resolve_data(_config("tvsd"))


@pytest.mark.parametrize("folder", ["nowhere", "empty"])
def test_a_missing_release_says_what_to_fetch_and_which_field_points_to_it(tmp_path, folder):
  (tmp_path / "empty").mkdir()
  config = _config(
    "majajhong2015",
    "--config.data.source=files",
    f"--config.data.cifar_dir={tmp_path}",
    f"--config.data.brain_dir={tmp_path / folder}",
    "--config.data.rois=V4,IT",
  )
  with pytest.raises(MissingDatasetError) as err:
    experiment.resolve_data(config)
  message = str(err.value)
  assert message.startswith(
    f"MajajHong2015 (Brain-Score's public V4/IT assembly and the HvM stimulus set) not found at {tmp_path / folder}"
  )
  assert "`leut fetch majajhong2015 --dest <dir>`" in message and "config field `data.brain_dir`" in message


@pytest.mark.parametrize(
  "brain, rois",
  [("things_fmri", "V1,IT"), ("majajhong2015", "V4,IT")],
)
def test_eval_metrics_load_the_responses_the_rsa_rdms_are_built_from(brain, rois, synthetic_dir):
  """With cka/encoding chosen, the evaluation's responses have the RSA stimuli in the RSA row order, and their
  correlation-distance RDMs are the brain RDMs RSA scores (so CKA and encoding see the same brain data as RSA)."""
  config = _config(
    brain,
    f"--config.data.synthetic_dir={synthetic_dir}",
    f"--config.data.rois={rois}",
    "--config.data.n_stimuli=24",
    "--config.eval.resolutions=32",
    "--config.eval.test_images=8",
    "--config.eval.metrics=rsa,cka,encoding",
  )
  paths = experiment.resolve_data(config)
  inputs = experiment.load_eval_inputs(config, paths, progress=False)
  resp = inputs.responses
  assert resp.stimuli == inputs.brain.stimuli and len(resp.stimuli) == 24
  assert resp.rois == inputs.brain.rois
  rdms = resp.to_brain_data().rdms_RxJxSxS
  np.testing.assert_allclose(rdms, inputs.brain.rdms_RxJxSxS, atol=2e-5)
  config.eval.metrics = ["rsa"]
  assert experiment.load_eval_inputs(config, paths, progress=False).responses is None


def test_eval_inputs_read_each_things_fmri_subjects_betas_once_for_rsa_cka_and_encoding(synthetic_dir, monkeypatch):
  """With rsa, cka and encoding chosen, one load of the evaluation inputs reads each THINGS-fMRI subject's betas
  once (not once for the RDMs and again for the responses), and the RSA brain data are `load_brain_rdms`'s: the
  same stimuli, concepts, subjects and ROIs, bit-identical RDMs and the same per-stimulus runs (PROTOCOL 3.4)."""
  from leut.data import fmri_files, response_h5, things_fmri

  reads, read_rows = [], response_h5._read_rows

  def counted(path, *args):
    reads.append(Path(path).name)
    return read_rows(path, *args)

  monkeypatch.setattr(response_h5, "_read_rows", counted)
  config = _config(
    "things_fmri",
    f"--config.data.synthetic_dir={synthetic_dir}",
    "--config.data.rois=V1,LOC,IT",
    "--config.data.zscore=run",
    "--config.data.n_stimuli=24",
    "--config.eval.resolutions=32",
    "--config.eval.test_images=8",
    "--config.eval.metrics=rsa,cka,encoding",
  )
  paths = experiment.resolve_data(config)
  inputs = experiment.load_eval_inputs(config, paths, progress=False)
  subjects = fmri_files.find_subject_files(paths.things_fmri_dir)
  assert len(subjects) == 3 and sorted(reads) == sorted(f.responses.name for f in subjects)
  assert inputs.responses is not None and inputs.responses.stimuli == inputs.brain.stimuli
  want = things_fmri.load_brain_rdms(
    paths.things_fmri_dir, rois=("V1", "LOC", "IT"), zscore="run", n_stimuli=24, progress=False
  )
  got = inputs.brain
  assert (got.stimuli, got.concepts, got.subjects, got.rois) == (want.stimuli, want.concepts, want.subjects, want.rois)
  assert got.rdms_RxJxSxS.dtype == want.rdms_RxJxSxS.dtype
  np.testing.assert_array_equal(got.rdms_RxJxSxS, want.rdms_RxJxSxS)
  np.testing.assert_array_equal(got.runs_JxS, want.runs_JxS)
  assert (want.runs_JxS >= 0).all()  # per_concept stimuli: each shown in one run, so the runs are compared


def test_a_release_without_voxel_noise_ceilings_is_refused_before_training_when_encoding_is_chosen(tmp_path):
  from tests.data.fmri_release import tiny_subject, write_subject

  betas, vox, stim = tiny_subject()
  write_subject(tmp_path, "sub-01", betas, vox.drop(columns=["nc_singletrial", "nc_testset"], errors="ignore"), stim)
  config = _config("things_fmri", "--config.eval.metrics=rsa,encoding")
  with pytest.raises(DataFormatError, match=r"sub-01_VoxelMetadata.csv.*no 'nc_singletrial' column"):
    experiment.check_noise_ceilings(config, tmp_path)
  write_subject(tmp_path, "sub-01", betas, vox, stim)
  experiment.check_noise_ceilings(config, tmp_path)  # the release as distributed passes
