"""leut.encoding: cross-validated ridge encoding models, jittable and vmapped over seeds, folds and penalties.

Features of a layer (stimuli x units) predict response-level brain data (stimuli x neurons or voxels,
`leut.data.responses.ResponseData`); each target's penalty is chosen inside the training stimuli by exact
leave-one-out error from one SVD per fold; scores are held-out Pearson r, normalised by each target's noise
ceiling over the targets reliable enough to be scored.
"""

from leut.encoding.ceiling import CeiledScores, ceiling_from_percent, ceiling_normalise
from leut.encoding.folds import kfold_test_masks, split_test_mask
from leut.encoding.ridge import RidgeFit, ridge_loo_fit
from leut.encoding.scores import EncodingScores, encoding_scores, fold_scores, masked_pearson

__all__ = [
  "CeiledScores",
  "EncodingScores",
  "RidgeFit",
  "ceiling_from_percent",
  "ceiling_normalise",
  "encoding_scores",
  "fold_scores",
  "kfold_test_masks",
  "masked_pearson",
  "ridge_loo_fit",
  "split_test_mask",
]
