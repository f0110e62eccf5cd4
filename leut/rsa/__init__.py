"""leut.rsa: jittable RSA and statistics engine (RDMs, rank comparisons, bootstrap, permutation, ceilings).

Every public function takes arrays with shapes in their names (`feats_SxU`, `rdm_SxS`, `vec_P`, `J` subjects,
`B` resamples, `N` permutations/seeds) and broadcasts over leading axes. PROTOCOL.md §3 lists the statistics
reproduced here and the published mistakes that are fixed (pair bootstrap, unpaired permutations, no +1, biased
best-layer maxima, NaN on dead features).

Nothing here turns an undefined result into a number: non-finite input gives NaN (jitted kernels) or a clear error
(host-side entry points, `leut.rsa.errors`), and undefined correlations (fewer than two kept pairs, a constant
vector) are NaN for every comparison method. Every matrix product runs at full float32 (`leut.rsa.precision`).
"""

from leut.rsa.aggregate import mean_rdm_score, mean_subject_score
from leut.rsa.best_layer import BestLayerResult, cross_validated_best_layer
from leut.rsa.bootstrap import (
  BootstrapResult,
  bootstrap,
  bootstrap_p,
  bootstrap_scores,
  min_defined_draws,
  n_defined,
  percentile_ci,
  resample_indices,
)
from leut.rsa.cka import centred_gram, cka, cka_from_grams
from leut.rsa.compare import compare
from leut.rsa.controls import color_histogram_rdm, gabor_energy_rdm, luminance_rdm, mean_rgb_rdm, pixel_rdm
from leut.rsa.effect_size import cohens_d
from leut.rsa.errors import DegenerateFeaturesError, NonFiniteFeaturesError, NonFiniteInputError
from leut.rsa.multiple_comparisons import fdr_bh, holm
from leut.rsa.noise_ceiling import NoiseCeiling, noise_ceiling
from leut.rsa.pairs import block_clean, cross_run_mask
from leut.rsa.partial import partial_compare, partial_spearman, rank_residuals
from leut.rsa.permutation import PermutationResult, p_value, permutation_test, permutations
from leut.rsa.ranks import centred_unit, rank_average
from leut.rsa.rdm import check_features, constant_rows, n_stimuli, non_finite_rows, rdm, squareform, upper_tri
from leut.rsa.sign_flip import sign_flip_test

__all__ = [
  "DegenerateFeaturesError",
  "NonFiniteFeaturesError",
  "NonFiniteInputError",
  "check_features",
  "constant_rows",
  "non_finite_rows",
  "n_stimuli",
  "rdm",
  "squareform",
  "upper_tri",
  "centred_unit",
  "rank_average",
  "compare",
  "centred_gram",
  "cka",
  "cka_from_grams",
  "mean_rdm_score",
  "mean_subject_score",
  "block_clean",
  "cross_run_mask",
  "BootstrapResult",
  "bootstrap",
  "bootstrap_p",
  "bootstrap_scores",
  "min_defined_draws",
  "n_defined",
  "percentile_ci",
  "resample_indices",
  "PermutationResult",
  "p_value",
  "permutation_test",
  "permutations",
  "sign_flip_test",
  "fdr_bh",
  "holm",
  "cohens_d",
  "NoiseCeiling",
  "noise_ceiling",
  "partial_compare",
  "partial_spearman",
  "rank_residuals",
  "color_histogram_rdm",
  "gabor_energy_rdm",
  "luminance_rdm",
  "mean_rgb_rdm",
  "pixel_rdm",
  "BestLayerResult",
  "cross_validated_best_layer",
]
