"""Config overrides: typed parsing, and one clear error naming the field for anything that does not parse."""

import pytest

from leut import config as config_lib
from leut.defaults import protocol_config


def test_overrides_take_the_type_of_the_field():
  c = protocol_config()
  for item in ("--config.seeds=7", "--config.rules=untrained,backprop", "--config.model.widths=(8,16)"):
    config_lib.apply_override(c, item)
  assert c.seeds == 7 and c.rules == ["untrained", "backprop"] and tuple(c.model.widths) == (8, 16)
  config_lib.apply_override(c, "--config.eval.partial_controls=")  # an empty list where a list may be empty
  assert tuple(c.eval.partial_controls) == ()
  config_lib.apply_override(c, "--config.rules=")  # parses; `leut.checks` refuses an empty rule list
  assert list(c.rules) == []


@pytest.mark.parametrize(
  "item, field",
  [
    ("--config.seeds=", "seeds"),
    ("--config.seeds=five", "seeds"),
    ("--config.eval.upsampled=maybe", "eval.upsampled"),
    ("--config.milestones=[0,1", "milestones"),
    ("--config.nonsense=1", "nonsense"),
  ],
)
def test_a_bad_override_is_one_error_naming_the_field(item, field):
  with pytest.raises(ValueError, match=field) as caught:
    config_lib.apply_override(protocol_config(), item)
  assert "\n" not in str(caught.value)
