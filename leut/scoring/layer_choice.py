"""Which layer a set of per-seed or per-split choices settles on (shared by the scoring and the report tables)."""

from __future__ import annotations


def modal_layer(choices: list[str], layers=()) -> str:
  """The most frequent of `choices`; ties go to the earliest in `layers` (then in `choices`)."""
  order = list(layers) + [l for l in dict.fromkeys(choices) if l not in layers]
  return max(order, key=lambda l: (choices.count(l), -order.index(l)))
