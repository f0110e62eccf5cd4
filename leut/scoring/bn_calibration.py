"""Paper C's BatchNorm calibration factorial (PROTOCOL §3.2 "BN calibration factorial", §4.5): the same weights
scored with BatchNorm running statistics recomputed from a chosen image source.

For a checkpoint, the running statistics of every BatchNorm are reset and recomputed as a cumulative average over
K = `eval.bn_calibration_batches` forward batches of B = `eval.bn_calibration_batch_size` images in training mode
(PyTorch's `momentum=None`, paper C's fix of the 0.1 exponential average), then the network is scored in evaluation
mode as usual. With μ_k and σ²_k a batch's per-channel mean and biased variance over its m = B·H·W positions,

    running_k = running_{k-1} + (x_k − running_{k-1}) / k,   x_k = μ_k (mean) or σ²_k · m / (m − 1) (variance),

so after K batches running_K = (1/K) Σ_k x_k: the plain average of the batch statistics (the reset values drop out
at k = 1). Each layer's batch statistics are those of training mode: the layers below normalise by their own batch
statistics, not by the running ones. Only BatchNorm state changes: the weights (kernels, BN γ/β, dense layers) are
hashed before and after and must be bit-identical (`check_weights_unchanged`).

Sources (`eval.bn_calibration`, paper C's letters):

  cifar32           A  CIFAR-10 training images in file order (no augmentation), 32 px
  cifar_eval_size   B  the same, resized to the evaluation size (the stimuli's PIL bilinear resize), per resolution
  things32          C  THINGS images of the concepts that contribute no evaluation stimulus, 32 px
  things_eval_size  D  the same at the evaluation size
  eval_images32        leak probe C_leak: the evaluation stimuli themselves at 32 px
  eval_images          leak probe D_leak: the evaluation stimuli exactly as they are scored (size and arm)

Batch k takes the source's images (k·B + i) mod n, i < B: a source with fewer than K·B images (the synthetic
default's, the 720 stimuli) is cycled in order. THINGS images are taken round-robin over the concepts (every
concept's first image, then every concept's second, ...), so a partial pass covers every concept.

Rows (`leut.evaluate.bn_calibration_rows`): `results/rsa.csv` gets a `bn_calibration` column (`none` = the
published running statistics, else the source) only when a source is configured; the report keeps the `none` rows.
`results/bn_calibration.csv` (`summary_table`) gives, per condition, the seed mean ρ (mean over subjects), its
change against the published statistics of the same checkpoint and against the same calibration at epoch 0 (paper
C's control: is a rule's drop from epoch 0 still there when both networks see the same BN statistics?).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from PIL import Image

from leut.data import things_images
from leut.data.errors import MissingDatasetError
from leut.data.normalization import normalize_01
from leut.errors import ConfigError
from leut.xla_cpu import network_jit

SOURCES = ("cifar32", "cifar_eval_size", "things32", "things_eval_size", "eval_images32", "eval_images")
PUBLISHED = "none"  # `bn_calibration` of the rows scored with the checkpoint's own running statistics
CHECKPOINTS = ("untrained", "all")  # epoch-0 checkpoints only (every rule's untrained network), or every milestone
COLUMN = "bn_calibration"
UNSUPPORTED_RULES = {
  "stdp_published": "normalises ReLU(conv) in the published block order, which the calibration pass does not run"
}


def configured(config) -> list[str]:
  """The configured calibration sources (empty: the published path only)."""
  return list(config.eval.get("bn_calibration", []) or [])


def check_config(config) -> None:
  """Raise a `ConfigError` for a calibration the configured networks and rules cannot run (before any work)."""
  if not configured(config):
    return
  if config.model.get("name", "cnn") == "flax":
    raise ConfigError(
      "eval.bn_calibration: a flax model keeps its BatchNorm statistics in its own modules; calibration needs "
      "leut's block networks (model.name 'cnn' or 'resnet'); set --config.eval.bn_calibration=[]"
    )
  bad = {r: why for r, why in UNSUPPORTED_RULES.items() if r in list(config.rules)}
  if bad:
    raise ConfigError(
      f"eval.bn_calibration: rule(s) {sorted(bad)} cannot be calibrated ({'; '.join(bad.values())}); "
      "evaluate them without eval.bn_calibration"
    )


def applies(config, epoch: int) -> bool:
  """Whether the checkpoint of `epoch` gets the calibrated conditions (`eval.bn_calibration_checkpoints`)."""
  if not configured(config):
    return False
  return epoch == 0 or config.eval.get("bn_calibration_checkpoints", "untrained") == "all"


# ----- the calibration itself ------------------------------------------------------------------------------------


def batch_moments(network, params, model_state, x_NxHxWx3) -> dict:
  """`{bn: {"mean": μ, "var": σ² m/(m−1)}}` of one batch in training mode (what PyTorch's running average takes).

  The blocks run with `train=True`: every BatchNorm normalises by this batch's statistics and returns them
  (`leut.models.network.Block`); the head has no BatchNorm.
  """
  h, out = x_NxHxWx3, {}
  for block in network.blocks:
    res = block.apply(params, model_state, h, train=True)
    for bn, stats in res.batch_stats.items():
      out[bn] = {"mean": stats.mean, "var": stats.var * (stats.count / max(stats.count - 1, 1))}
    h = res.out
  return out


def reset_state(model_state) -> dict:
  """BatchNorm state at PyTorch's reset: running mean 0, running variance 1."""
  return {bn: {"mean": jnp.zeros_like(s["mean"]), "var": jnp.ones_like(s["var"])} for bn, s in model_state.items()}


@functools.cache
def _cumulative_step(network) -> Callable:
  """Seed-vmapped, jitted `running_k = running_{k-1} + (x_k − running_{k-1}) / k` for one batch (module docstring)."""

  def step(params, running, k, x_NxHxWx3):
    moments = batch_moments(network, params, running, x_NxHxWx3)
    if set(moments) != set(running):
      raise ValueError(
        f"BatchNorm layers {sorted(moments)} seen in the forward pass, model state has {sorted(running)}"
      )
    weight = 1.0 / k
    return {
      bn: {f: running[bn][f] + weight * (moments[bn][f] - running[bn][f]) for f in ("mean", "var")} for bn in running
    }

  return network_jit(jax.vmap(step, in_axes=(0, 0, None, None)))


def calibrate(network, params, model_state, batches) -> dict:
  """Model state (all seeds) whose BatchNorm statistics are the cumulative average over `batches` (an iterable of
  normalised `B x H x W x 3` arrays), starting from `reset_state`. The weights are checked to be unchanged."""
  if not network.blocks:
    raise ConfigError("eval.bn_calibration needs leut's block networks (model.name 'cnn' or 'resnet')")
  before = weights_digest(params)
  step = _cumulative_step(network)
  running = reset_state(model_state)
  n = 0
  for n, x in enumerate(batches, start=1):
    running = step(params, running, jnp.float32(n), jnp.asarray(x, jnp.float32))
  if n == 0:
    raise ValueError("BatchNorm calibration got no batch")
  check_weights_unchanged(before, params)
  return running


def weights_digest(params) -> str:
  """SHA-256 over every parameter's path and bytes (paper C verified its conv weights bit-identical by sha256)."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    h.update(jax.tree_util.keystr(path).encode())
    h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return h.hexdigest()


def check_weights_unchanged(digest_before: str, params) -> None:
  """Raise `RuntimeError` unless `params` still hash to `digest_before`: calibration may change BN state only."""
  if weights_digest(params) != digest_before:
    raise RuntimeError("BatchNorm calibration changed the network's weights; it may only change running statistics")


# ----- the images of each source ---------------------------------------------------------------------------------


def _uint8(img: Image.Image, px: int) -> np.ndarray:
  """One image as the stimuli are preprocessed (`things_images.preprocess_01`), kept as uint8 (exact: /255 later)."""
  return np.round(things_images.preprocess_01(img, px) * 255.0).astype(np.uint8)


def things_calibration_files(images_dir, eval_stimuli: Sequence[str], n: int) -> list[Path]:
  """Up to `n` THINGS images of concepts that contribute no evaluation stimulus, round-robin over the concepts
  (sorted): each concept's first image, then each one's second, ..."""
  root = Path(images_dir).expanduser()
  root = root / "object_images" if (root / "object_images").is_dir() else root
  used = {things_images.concept_of(s) or Path(s).stem for s in eval_stimuli}
  folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in used) if root.is_dir() else []
  per_concept = [sorted(f for f in d.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png")) for d in folders]
  files = [fs[i] for i in range(max(map(len, per_concept), default=0)) for fs in per_concept if i < len(fs)]
  if not files:
    raise MissingDatasetError(
      f"eval.bn_calibration: no THINGS image of a concept outside the {len(used)} evaluated concepts in {root}; "
      "things32 / things_eval_size need the full THINGS object_images folder (data.things_images_dir)",
      root,
    )
  return files[:n]


class CalibrationImages:
  """The images of every configured source, preprocessed once per size (uint8) and served as normalised batches.

  Args:
    config: the run's config (`eval.bn_calibration*`).
    cifar_dir: CIFAR-10 (its training batches are read only for the cifar sources).
    things_images_dir: THINGS `object_images` (or its parent), for the things sources.
    eval_stimuli: the evaluation stimuli's names (their concepts are left out of the things sources).
    load_stimuli: `(px, upsampled) -> S x px x px x 3` normalised stimuli (for `eval_images32`).
    stimuli: the scored stimuli per (resolution, arm) (for `eval_images`).
  """

  def __init__(self, config, *, cifar_dir, things_images_dir, eval_stimuli, load_stimuli, stimuli):
    self.sources = configured(config)
    self.n_batches = int(config.eval.get("bn_calibration_batches", 50))
    self.batch_size = int(config.eval.get("bn_calibration_batch_size", 128))
    self._cifar_dir, self._things_dir = cifar_dir, things_images_dir
    self._eval_stimuli, self._load_stimuli, self._stimuli = list(eval_stimuli), load_stimuli, stimuli
    self._pools = {}  # (source, px, arm) -> uint8 or normalised float32 images

  def key(self, source: str, px: int, arm: str) -> tuple[str, int, str]:
    """What the calibrated statistics depend on: the 32-px sources not on the evaluation size, only the leak probe
    `eval_images` on the arm."""
    size = 32 if source.endswith("32") else int(px)
    return source, size, arm if source == "eval_images" else "native"

  def _pool(self, source: str, px: int, arm: str) -> np.ndarray:
    key = self.key(source, px, arm)
    if key not in self._pools:
      _, size, arm = key
      need = self.n_batches * self.batch_size
      if source.startswith("cifar"):
        from leut.data import cifar

        if self._cifar_dir is None:
          raise MissingDatasetError(f"eval.bn_calibration={source}: set data.cifar_dir", None)
        train = cifar.load_cifar10(self._cifar_dir).train_images[:need]
        pool = train if size == 32 else np.stack([_uint8(Image.fromarray(x), size) for x in train])
      elif source.startswith("things"):
        if self._things_dir is None:
          raise MissingDatasetError(f"eval.bn_calibration={source}: set data.things_images_dir", None)
        pool = []
        for f in things_calibration_files(self._things_dir, self._eval_stimuli, need):
          with Image.open(f) as img:
            pool.append(_uint8(img, size))
        pool = np.stack(pool)
      elif source == "eval_images32":
        pool = self._stimuli[(32, "native")] if (32, "native") in self._stimuli else self._load_stimuli(32, False)
      elif source == "eval_images":
        pool = self._stimuli[(int(px), arm)]
      else:
        raise ConfigError(f"eval.bn_calibration: unknown source {source!r}; valid sources: {', '.join(SOURCES)}")
      self._pools[key] = pool
    return self._pools[key]

  def batches(self, source: str, px: int, arm: str):
    """The K normalised calibration batches of `source` for stimuli at `px` (`arm`): batch k holds the images
    (k·B + i) mod n of the source's n images."""
    pool = self._pool(source, px, arm)
    n = len(pool)
    for k in range(self.n_batches):
      x = pool[(k * self.batch_size + np.arange(self.batch_size)) % n]
      yield normalize_01(x.astype(np.float32) / 255.0) if x.dtype == np.uint8 else x


# ----- rows and tables ------------------------------------------------------------------------------------


def label_published(config, rows: list[dict]) -> None:
  """With calibration configured, mark the published rows `bn_calibration = none` (in place); else leave rows as
  they are, so the published tables keep their columns."""
  if configured(config):
    for row in rows:
      row.setdefault(COLUMN, PUBLISHED)


def published_rows(rsa: pd.DataFrame) -> pd.DataFrame:
  """The rows scored with the checkpoints' own running statistics (what the report analyses), without the column."""
  if COLUMN not in rsa:
    return rsa
  return rsa[rsa[COLUMN].fillna(PUBLISHED) == PUBLISHED].drop(columns=COLUMN).reset_index(drop=True)


def summary_table(rsa: pd.DataFrame) -> pd.DataFrame:
  """Per rule, epoch, layer, ROI, resolution, arm, pair set and `bn_calibration`: over seeds, the mean of the
  seed score (mean over subjects of per-subject ρ, NaN if any subject's is), and its paired changes

    delta_vs_published = ρ(calibrated) − ρ(published statistics), same seed and checkpoint;
    change_vs_epoch0   = ρ(epoch e) − ρ(epoch 0), same seed, rule and calibration (NaN where epoch 0 lacks it),

  each with its SD over seeds (ddof=1), the seed count and how many seeds' change is positive."""
  keys = ["rule", "epoch", "layer", "roi", "resolution", "arm", "pairs", COLUMN]
  keys += ["readout"] if "readout" in rsa else []
  subj = rsa[rsa.subject != "mean"]
  seed = subj.groupby([*keys, "seed"], sort=False, dropna=False).rho.agg(
    lambda v: v.mean() if v.notna().all() else np.nan
  )
  seed = seed.rename("rho").reset_index()
  cond = [k for k in keys if k != COLUMN]
  published = seed[seed[COLUMN] == PUBLISHED][[*cond, "seed", "rho"]].rename(columns={"rho": "rho_published"})
  seed = seed.merge(published, on=[*cond, "seed"], how="left")
  first = [k for k in keys if k != "epoch"]
  epoch0 = seed[seed.epoch == 0][[*first, "seed", "rho"]].rename(columns={"rho": "rho_epoch0"})
  seed = seed.merge(epoch0, on=[*first, "seed"], how="left")
  seed["delta_vs_published"] = seed.rho - seed.rho_published
  seed["change_vs_epoch0"] = seed.rho - seed.rho_epoch0
  g = seed.groupby(keys, sort=False, dropna=False)
  out = g.agg(
    rho=("rho", "mean"),
    rho_sd=("rho", "std"),
    delta_vs_published=("delta_vs_published", "mean"),
    delta_sd=("delta_vs_published", "std"),
    n_delta_positive=("delta_vs_published", lambda v: int((v > 0).sum())),
    change_vs_epoch0=("change_vs_epoch0", "mean"),
    change_sd=("change_vs_epoch0", "std"),
    n_change_positive=("change_vs_epoch0", lambda v: int((v > 0).sum())),
    n=("rho", "count"),
  )
  return out.reset_index()
