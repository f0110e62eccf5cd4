"""Fixtures for the data-layer tests."""

from __future__ import annotations

import pytest
from fmri_release import tiny_subject, write_subject


@pytest.fixture
def tiny_release(tmp_path):
  """A two-subject Figshare-format release; returns (root, {sub: (betas, vox, stim)})."""
  subs = {"sub-01": tiny_subject(1), "sub-02": tiny_subject(2, shuffle_trials=True)}
  for sub, (b, v, s) in subs.items():
    write_subject(tmp_path / "betas_csv", sub, b, v, s)
  return tmp_path, subs
