"""The protocol's defaults (PROTOCOL §1–3), shared by every experiment config; each field says what it means."""

import ml_collections


def published_initialisations() -> tuple[dict, dict]:
  """The published starting points (PROTOCOL §1.2): FA and STDP convs kaiming-normal (FA's with a zero bias, its
  feedback B xavier-normal), BP / untrained / PC PyTorch's default uniform. Returns
  `(model.init_per_rule, rule_hparams)`; with them the untrained network is the epoch 0 of BP and PC only."""
  init_per_rule = {
    "feedback_alignment": {"conv_init": "kaiming_normal", "conv_bias": True},
    "stdp": {"conv_init": "kaiming_normal"},
    "stdp_published": {"conv_init": "kaiming_normal"},
  }
  return init_per_rule, {"feedback_alignment": {"feedback_init": "xavier_normal"}}


def protocol_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # the one integer every random stream derives from
  c.seeds = 5  # networks per rule, vmapped in one program
  c.rules = ["untrained", "backprop", "feedback_alignment", "predictive_coding", "stdp"]
  c.rule_hparams = ml_collections.ConfigDict()  # per rule overrides, e.g. {'backprop': {'dropout_rate': 0.3}}
  c.epochs = 40  # training length; the cosine schedule spans it
  c.milestones = [0, 1, 2, 5, 10, 20, 30, 40]  # epochs checkpointed and scored (0 = untrained)
  c.batch_size = 128
  c.seed_chunk = 0  # seeds trained / evaluated at a time (0 = the largest chunk that fits; leut.train.sharding)
  c.model = ml_collections.ConfigDict(
    dict(
      name="cnn",  # 'cnn' (the protocol CNN, any depth), 'resnet' (CIFAR-style residual), 'flax' (your module)
      widths=(32, 64, 128),  # cnn: channels of conv1..convN (one block each); resnet: channels of each stage
      pool_after=None,  # cnn: blocks (1-based) ending in a 2x2 max-pool; None: at most 3, evenly spaced, last one
      units_per_stage=1,  # resnet: residual units per stage (depth 2 + 2 * stages * units)
      fc_dim=512,  # fc1 units
      conv_init="torch_default",  # conv kernels: 'torch_default' (U(±1/sqrt(fan_in))) or 'kaiming_normal'
      conv_bias=False,  # a zero-initialised bias on every conv (the published FA)
      init_per_rule={},  # rule -> {'conv_init': ..., 'conv_bias': ...}; empty: one shared init, so that
      # 'untrained' is every rule's epoch 0 (with per-rule inits it is only the epoch 0 of rules sharing its init)
      module="",  # flax: 'path/to/file.py:Class' or 'package.module:Class' (a flax.linen.Module)
      module_kwargs={},  # flax: keyword arguments of the module
      feature_layers=(),  # flax: intermediates scored as layers, in depth order (module paths or sow names)
    )
  )
  c.data = ml_collections.ConfigDict(
    dict(
      source="synthetic",  # 'synthetic' (embedded default) or 'files' (the paths below)
      brain="things_fmri",  # brain data: things_fmri, majajhong2015, freemanziemba2013 or tvsd (leut.data.brains)
      brain_dir="",  # with source='files' and a macaque `brain`: its release folder (`leut fetch NAME` prints it)
      synthetic_dir="data_cache/synthetic",  # where the synthetic default is written once
      cifar_dir="",  # folder with cifar-10-batches-py (or -bin, or the .tar.gz)
      things_fmri_dir="",  # THINGS-fMRI single-trial betas (Figshare betas_csv or OpenNeuro layout)
      things_images_dir="",  # THINGS object_images/ folder
      brain_rdms_dir="",  # alternatively: precomputed fmri_rdm_{ROI}_{sub}.npy + stim_order_{sub}.txt
      train_subset=8000,  # training images per seed (drawn per seed, PROTOCOL §2.1)
      rois=["V1", "V2", "V3", "V4", "LOC", "IT"],
      subjects=[],  # empty: every subject found
      zscore="all",  # z-score voxels over all trials ('all') or within each run ('run')
      stimuli="per_concept",  # one image per concept (720 in THINGS-fMRI) or 'test' (100, averaged repeats)
      n_stimuli=0,  # 0: all selected stimuli
    )
  )
  c.eval = ml_collections.ConfigDict(
    dict(
      resolutions=[224],  # stimulus sizes in px (multiples of 32)
      upsampled=False,  # also score the 32-px-then-upsampled arm (PROTOCOL §3.1)
      metrics=["rsa"],  # scores to compute (leut.scoring.metrics): 'rsa' (always), and beside it 'cka' (linear CKA,
      # results/cka.csv) and/or 'encoding' (cross-validated ridge, results/encoding.csv); both need response data
      pairs=["all", "cross_run"],  # stimulus-pair sets (cross_run: PROTOCOL §3.4)
      metric="correlation",  # RDM distance
      method="spearman",  # RDM comparison
      batch_size=32,  # images per feature-extraction chunk (bounds memory at 224 px)
      test_images=10000,  # held-out CIFAR images for accuracy (0 = all)
      partial_controls=("pixel", "luminance"),  # control RDMs for partial RSA (also mean_rgb, color_histogram,
      # gabor); empty: no partial RSA
      n_boot=1000,  # stimulus-bootstrap resamples for CIs (0: none)
      stats_epochs="first_last",  # partial RSA, bootstrap and CV best layer at 'first_last' milestones or at 'all'
      best_layer_splits=10,  # random stimulus halvings for the cross-validated best layer (0: none)
      readout="mean",  # conv maps -> features (leut.readout): 'mean' (published), 'flatten' (random projection), 'pca'
      readout_dims=4096,  # flatten / pca: random-projection dimensions of a larger flattened map
      readout_components=100,  # pca: principal components kept (at most stimuli - 1)
      readout_seed=0,  # flatten / pca: the projection's key, jax.random.key(readout_seed)
      bn_calibration=[],  # paper C's BatchNorm calibration sources scored beside the published statistics
      # (leut.bn_calibration): cifar32, cifar_eval_size, things32, things_eval_size, eval_images32, eval_images
      bn_calibration_checkpoints="untrained",  # 'untrained' (epoch-0 checkpoints) or 'all' (every milestone)
      bn_calibration_batches=50,  # training-mode forward batches averaged (cumulative, PyTorch momentum=None)
      bn_calibration_batch_size=128,
    )
  )
  c.report = ml_collections.ConfigDict(
    dict(
      layer_for_roi={},  # override the fixed layer per ROI, e.g. {'V1': 'conv2'}
      alternative="two-sided",  # sign-flip tests: 'two-sided', 'greater' or 'less'
      n_mc=100_000,  # Monte Carlo sign assignments beyond 2^20 exact ones
      figure_formats=("png", "pdf"),  # each figure in figures/ as: 'png', 'pdf' and/or 'svg'
    )
  )
  return c
