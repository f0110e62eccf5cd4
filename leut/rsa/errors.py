"""Errors raised by the host-side checks of the RSA engine."""


class DegenerateFeaturesError(ValueError):
  """Some stimuli have constant feature vectors, so correlation distance is undefined for them.

  Attributes:
    name: the layer / condition label given to `check_features`.
    n_constant: how many stimuli are constant (summed over any leading axes).
    n_stimuli: number of stimuli per feature matrix.
  """

  def __init__(self, name: str, n_constant: int, n_stimuli: int, detail: str = ""):
    self.name = name
    self.n_constant = n_constant
    self.n_stimuli = n_stimuli
    msg = (
      f"{name}: {n_constant} of {n_stimuli} stimuli have constant feature vectors "
      f"(e.g. an all-zero ReLU response); correlation/cosine distance is undefined for them"
    )
    if detail:
      msg += f" ({detail})"
    super().__init__(msg)
