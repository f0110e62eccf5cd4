"""The real-data route: `data.source=files` reads the same formats as the downloads, and the paper configs load."""

import glob

import pandas as pd
import pytest

from leut import cli, rules
from leut import config as config_lib
from leut.data import synthetic
from tests.helpers import PLUMBING_RUN
from tests.test_end_to_end import TINY


@pytest.mark.parametrize("path", sorted(glob.glob("experiments/*.py")))
def test_every_experiment_config_loads_and_names_known_rules(path):
  config = config_lib.load(path)
  rules.check_names(config.rules)
  assert set(config.milestones) <= set(range(config.epochs + 1))
  assert all(px % 32 == 0 for px in config.eval.resolutions)


def test_files_source_with_things_fmri_and_with_precomputed_rdms_agree(tmp_path, synthetic_dir):
  default = synthetic.ensure_default(synthetic_dir)
  out = tmp_path / "rdms"
  assert (
    cli.main(
      [
        "brain-rdms",
        "--things-fmri",
        str(default.things_fmri_dir),
        "--out",
        str(out),
        "--rois",
        "V1",
        "V2",
        "LOC",
        "IT",
        "--no-progress",
      ]
    )
    == 0
  )
  common = [
    "--config.data.source=files",
    f"--config.data.cifar_dir={default.cifar_dir}",
    f"--config.data.things_images_dir={default.things_images_dir}",
    "--config.rules=untrained",
    *PLUMBING_RUN,
    *[t for t in TINY if "n_stimuli" not in t],
  ]
  assert (
    cli.main(
      [
        "run",
        "experiments/quickstart.py",
        "--workdir",
        str(tmp_path / "a"),
        f"--config.data.things_fmri_dir={default.things_fmri_dir}",
        *common,
      ]
    )
    == 0
  )
  assert (
    cli.main(
      [
        "run",
        "experiments/quickstart.py",
        "--workdir",
        str(tmp_path / "b"),
        f"--config.data.brain_rdms_dir={out}",
        *common,
      ]
    )
    == 0
  )
  a = pd.read_csv(tmp_path / "a" / "results" / "rsa.csv")
  b = pd.read_csv(tmp_path / "b" / "results" / "rsa.csv")
  assert len(a) == len(b) > 0
  pd.testing.assert_series_equal(a.rho, b.rho, rtol=1e-5)
