"""benchmarks/accelerator.py --small: the one-command accelerator benchmark runs end to end on CPU at toy sizes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import accelerator  # noqa: E402


def test_small_run_prints_one_table_with_every_row_measured(capsys):
  accelerator.main(["--small"])
  out = capsys.readouterr().out
  rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| item")]
  items = [r.split(" | ")[0][2:] for r in rows]
  s = accelerator.SMALL
  assert [i for i in items if i.startswith("train ")] == [
    f"train {r}" for r in s.seed_step_rules for _ in s.seed_counts
  ]
  assert [i for i in items if i.startswith("one epoch ")] == [f"one epoch {r}" for r in s.epoch_rules]
  assert "bootstrap" in items and items[-1] == "full protocol (extrapolated)"
  assert not [r for r in rows if "failed" in r or "skipped" in r], out
  seconds = [float(r.split(" | ")[3]) for r in rows[:-1]]
  assert all(t > 0 for t in seconds)
  extrapolated = rows[-1].split(" | ")[3]
  assert float(extrapolated.split(" s = ")[0]) > sum(seconds)  # the protocol is many times each measured unit
  assert "without epoch feedback_alignment" in extrapolated  # unmeasured stages are named, not guessed


def test_full_mode_times_every_trained_rule_and_both_readouts():
  """What the accelerator run covers (checked without running it): every trained rule's epoch, 1/5/32/128 seeds."""
  from leut import rules

  s = accelerator.PROTOCOL
  assert s.epoch_rules is None and s.seed_counts == (1, 5, 32, 128) and s.n_boot == 1000
  assert (s.stimuli, s.px, s.batch, s.subset // s.batch) == (720, 224, 128, 62)
  assert set(s.seed_step_rules) == set(s.readouts) == {"backprop", "predictive_coding"}
  assert {"backprop", "predictive_coding", "stdp", "feedback_alignment"} <= set(rules.available())
