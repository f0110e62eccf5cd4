"""Your own flax model, trained by backprop, feedback alignment and DFA and scored against the synthetic brain.

Command (from the repository root):

    leut run experiments/synthetic_flax_model.py --workdir workdirs/flax_model

Runtime: about 2 minutes on 2 CPU cores (4 conditions x 3 seeds x 5 epochs of 32 steps, JIT included).

What it shows: any `flax.linen.Module` whose `__call__(x, *, train)` returns logits goes through leut unchanged:
seeds vmapped, milestone checkpoints, every statistic of the report. The layers scored are named in
`model.feature_layers`: here the values the module `sow`s into 'intermediates' (a module path such as 'fc1'
scores that submodule's output instead). Feedback alignment and DFA reach the module's `nn.Conv`/`nn.Dense` layers
by method interception (`leut.models.linen`); predictive coding and STDP need leut's own blocks and refuse it.
Dropout and BatchNorm are the module's own (`train` switches them; BatchNorm statistics are leut's model state).
"""

from pathlib import Path

import flax.linen as nn
import ml_collections

from leut.defaults import protocol_config


class SmallCNN(nn.Module):
  """Two conv blocks (conv → BatchNorm → ReLU → 2x2 max-pool), global average pool, a hidden dense layer, logits."""

  widths: tuple = (16, 32)
  hidden: int = 64
  n_classes: int = 10

  @nn.compact
  def __call__(self, x, *, train: bool):
    for i, width in enumerate(self.widths, start=1):
      x = nn.Conv(width, (3, 3), use_bias=False, name=f"conv{i}")(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"bn{i}")(x)
      x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
      self.sow("intermediates", f"block{i}", x)
    x = nn.relu(nn.Dense(self.hidden, name="fc1")(x.mean(axis=(1, 2))))
    self.sow("intermediates", "hidden", x)
    x = nn.Dropout(0.3, deterministic=not train)(x)
    return nn.Dense(self.n_classes, name="fc2")(x)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  del arg
  config = protocol_config()
  config.rules = ["untrained", "backprop", "feedback_alignment", "direct_feedback_alignment"]
  config.model.name = "flax"
  config.model.module = f"{Path(__file__).resolve()}:SmallCNN"
  config.model.feature_layers = ("block1", "block2", "hidden")
  config.seeds = 3
  config.epochs = 5
  config.milestones = [0, 1, 2, 5]
  config.batch_size = 32
  config.data.source = "synthetic"
  config.data.train_subset = 1024
  config.data.rois = ["V1", "V2", "LOC", "IT"]
  config.eval.resolutions = [64]
  config.eval.test_images = 1000
  return config
