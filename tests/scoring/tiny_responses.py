"""A tiny `ResponseData` and layer features for the CKA and encoding table tests (hidden cases, no network)."""

import numpy as np
import pandas as pd

from leut.data.responses import ResponseData

ROIS, SUBJECTS = ("V1", "IT"), ("sub-01", "sub-02")


def tiny_case(seed=0, n_stimuli=20, n_seeds=3, per_block=5):
  """(feats {layer: NxSxU}, responses): responses partly driven by conv1's features, reliabilities around 0.3."""
  rng = np.random.default_rng(seed)
  feats = {
    "conv1": rng.normal(size=(n_seeds, n_stimuli, 4)) * rng.uniform(0.5, 2.0, 4) + rng.normal(size=4),
    "fc1": rng.normal(size=(n_seeds, n_stimuli, 7)),
  }
  blocks, rows = [], []
  for roi in ROIS:
    for subject in SUBJECTS:
      drive = feats["conv1"][0] @ rng.normal(size=(4, per_block))
      blocks.append(drive * rng.uniform(0.2, 1.5, per_block) + rng.normal(size=(n_stimuli, per_block)) * 2.0)
      for k in range(per_block):
        rows.append({"roi": roi, "subject": subject, "neuroid_id": f"{roi}-{subject}-{k}"})
  neuroids = pd.DataFrame(rows)
  neuroids["reliability"] = rng.uniform(0.1, 0.9, len(neuroids))
  resp = ResponseData(
    dataset="tiny",
    stimuli=tuple(f"stim{i:02d}" for i in range(n_stimuli)),
    concepts=tuple(f"c{i:02d}" for i in range(n_stimuli)),
    responses_SxN=np.concatenate(blocks, axis=1).astype(np.float32),
    neuroids=neuroids,
    split_S=None,
  )
  return {k: v.astype(np.float32) for k, v in feats.items()}, resp


WHERE = dict(rule="backprop", epoch=1, step=10, resolution=32, arm="native")
