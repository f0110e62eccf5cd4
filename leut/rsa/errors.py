"""Errors raised by the host-side checks of the RSA engine.

Policy for non-finite input (NaN, ±inf) across `leut.rsa`: jitted kernels cannot raise, so they return NaN for every
result that depends on a non-finite value (`compare`, ranks, `permutation_test`, `sign_flip_test`, `noise_ceiling`,
`partial_compare`, `cross_validated_best_layer`, `rdm`, `fdr_bh`, `cohens_d`, ...); host-side entry points that
cannot give a meaningful NaN raise one of the errors below (`bootstrap`, `check_features`).
"""


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


class NonFiniteInputError(ValueError):
  """An RSA input holds NaN or ±inf values (e.g. the features of a diverged network)."""


class NonFiniteFeaturesError(NonFiniteInputError):
  """Some stimuli have NaN/inf feature vectors (a diverged network), so every distance to them is undefined.

  Attributes:
    name: the layer / condition label given to `check_features`.
    n_non_finite: how many stimuli have a non-finite feature (summed over any leading axes).
    n_stimuli: number of stimuli per feature matrix.
  """

  def __init__(self, name: str, n_non_finite: int, n_stimuli: int, detail: str = ""):
    self.name = name
    self.n_non_finite = n_non_finite
    self.n_stimuli = n_stimuli
    msg = (
      f"{name}: {n_non_finite} of {n_stimuli} stimuli have NaN/inf features (a diverged network?); "
      "their distances are undefined"
    )
    if detail:
      msg += f" ({detail})"
    super().__init__(msg)
