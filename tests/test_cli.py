"""The command line: leut's own errors are one line (exit 2), bugs keep their traceback, `--debug` shows both."""

import json

import pytest

from leut import cli, experiment
from leut import config as config_lib
from leut.defaults import protocol_config


def test_a_leut_error_is_one_line_and_debug_adds_the_traceback(tmp_path, capsys):
  assert cli.main(["report", "--workdir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert err.startswith("leut report: error: ") and "config.json" in err and len(err.strip().splitlines()) == 1
  assert cli.main(["report", "--workdir", str(tmp_path), "--debug"]) == 2
  err = capsys.readouterr().err
  assert "Traceback (most recent call last)" in err and err.strip().endswith(err.strip().splitlines()[-1])
  assert "leut report: error: " in err


@pytest.mark.parametrize("bug", [KeyError("params"), ValueError("operands could not be broadcast"), OSError(5, "EIO")])
def test_an_unexpected_exception_is_not_hidden(tmp_path, monkeypatch, bug):
  (tmp_path / "config.json").write_text(json.dumps(config_lib.to_dict(protocol_config())))

  def buggy(*a, **k):
    raise bug

  monkeypatch.setattr(experiment, "evaluate", buggy)
  with pytest.raises(type(bug)):
    cli.main(["evaluate", "--workdir", str(tmp_path), "--no-progress"])


def test_report_takes_only_report_overrides(tmp_path, capsys):
  (tmp_path / "config.json").write_text(json.dumps({"seeds": 2}))
  assert cli.main(["report", "--workdir", str(tmp_path), "--config.eval.resolutions=64"]) == 2
  err = capsys.readouterr().err
  assert "eval.resolutions" in err and "leut evaluate" in err


def test_brain_rdms_errors_are_one_line_too(tmp_path, capsys):
  assert cli.main(["brain-rdms", "--things-fmri", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
  err = capsys.readouterr().err
  assert err.startswith("leut brain-rdms: error: ") and "data.things_fmri_dir" in err and "Traceback" not in err
