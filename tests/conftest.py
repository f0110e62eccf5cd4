"""Shared pytest set-up: strict JAX numerics and small, fast defaults for every test."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache per test session, shared with the subprocesses the tests start (launchers,
# kill-and-resume, notebooks): the same program compiled again in another process or test is read back, not rebuilt.
if os.environ.get("LEUT_TEST_COMPILE_CACHE", "1") == "1" and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="leut-test-xla-cache-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402

# Implicit rank promotion hides shape bugs (nanodo's habit); tests run with it off.
jax.config.update("jax_numpy_rank_promotion", "raise")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
  """The embedded synthetic default, written once per test session."""
  from leut.data import synthetic
  from tests.helpers import shared_dir

  return shared_dir(tmp_path_factory, "synthetic", synthetic.ensure_default)


# The longest test files (one end-to-end run or several subprocesses each), started first so that pytest-xdist
# (`-n 2 --dist loadfile`, as .ci/run runs) does not leave one of them for last on a single worker.
LONG_FIRST = (
  "tests/models/test_architectures.py",
  "tests/test_launch.py",
  "tests/test_distributed.py",
  "tests/test_end_to_end.py",
  "tests/report/test_report_outputs.py",
  "tests/test_experiment.py",
  "tests/models/test_linen.py",
  "tests/test_real_data_configs.py",
  "tests/test_evaluate.py",
  "tests/train/test_sharding.py",
  "tests/test_checkpoint.py",
  "tests/test_notebooks.py",
)


def pytest_collection_modifyitems(config, items):
  rank = {path: i for i, path in enumerate(LONG_FIRST)}
  root = config.rootpath
  items.sort(key=lambda item: rank.get(item.path.relative_to(root).as_posix(), len(rank)))
