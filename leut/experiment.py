"""`leut run`: from a config to checkpoints, tidy RSA tables, figures and a summary in one workdir.

The workdir's layout and how its files are written are `leut.workdir`'s. Each step starts only once the one before
succeeded, so a mistake costs seconds and no failure leaves a workdir half-updated:

  1. the config's fields (`leut.checks`), then the workdir lock (a second run on the same workdir is refused);
  2. the data: CIFAR loaded, the brain data and stimulus images checked (files, headers, tables; no betas read),
     every rule built and its network traced (`preflight`);
  3. config.json: written if the workdir is new, else compared with this config and code (`prepare_workdir`);
  4. training: every milestone checkpoint verified, missing or damaged ones retrained (`leut.train.milestones`);
  5. evaluation: every configured milestone of every rule must have a good checkpoint; all scores are computed in
     memory, then each table is replaced atomically, then config.json, then `results/COMPLETE`, then the report.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from leut import checks, distributed, report
from leut import config as config_lib
from leut import evaluate as evaluate_lib
from leut import workdir as workdir_lib
from leut.data import brains, cifar, fmri_files, things_fmri, things_fmri_responses, things_images
from leut.data.brainscore_assembly import ASSEMBLIES, assembly_path
from leut.data.errors import DataFormatError, MissingDatasetError, missing_dataset
from leut.data.normalization import normalize_01
from leut.data.responses import ResponseData
from leut.errors import ConfigError, LeutError, LeutWarning
from leut.scoring import bn_calibration, brain_truth
from leut.scoring import metrics as metrics_lib
from leut.train import batches, milestones


class CodeVersionWarning(LeutWarning):
  """The workdir was written by another version or commit of leut (its resolved settings match this code's)."""


class DataPaths(NamedTuple):
  cifar_dir: Path | None  # None only with resolve_data(brain_only=True)
  things_fmri_dir: Path | None
  things_images_dir: Path | None  # None for the Brain-Score datasets, which carry their own stimulus images
  brain_rdms_dir: Path | None
  brain_dir: Path | None = None  # the release folder of a macaque `data.brain`


def _brain(config) -> str:
  return config.data.get("brain") or "things_fmri"


def _check_brain_fields(config) -> None:
  """`data.brain` and the fields that must agree with it (its regions, its stimuli), before any file is read."""
  d, brain = config.data, _brain(config)
  if brain not in brains.BRAINS:
    raise ConfigError(f"data.brain must be one of {list(brains.BRAINS)}, not {brain!r}")
  if brain == "things_fmri":
    return
  brains.check_regions(brain, list(d.rois))
  if d.brain_rdms_dir:
    raise ConfigError(f"data.brain_rdms_dir holds THINGS-fMRI RDMs; with data.brain={brain!r} leave it empty")
  if brain != "tvsd" and d.stimuli == "test":
    raise ConfigError(
      f"data.stimuli='test': {brain} has no test set (every stimulus is scored, repetitions averaged); "
      "use data.stimuli=per_concept"
    )


def resolve_data(config, *, brain_only: bool = False) -> DataPaths:
  """Where each dataset lives: the embedded synthetic default (written on first use) or the configured paths.

  `brain_only` (`leut score-features`): CIFAR and the stimulus images may be left unset (their paths are then None).
  """
  d = config.data
  _check_brain_fields(config)
  brain = _brain(config)
  if d.source == "synthetic":
    from leut.data import synthetic

    default = synthetic.ensure_default(Path(d.synthetic_dir))
    if brain == "things_fmri":
      return DataPaths(Path(default.cifar_dir), Path(default.things_fmri_dir), Path(default.things_images_dir), None)
    release, images = brains.synthetic_release(brain, d.synthetic_dir)
    return DataPaths(Path(default.cifar_dir), None, Path(images) if brain == "tvsd" else None, None, Path(release))
  if d.source != "files":
    raise ConfigError(f"data.source must be 'synthetic' or 'files', not {d.source!r}")
  if brain != "things_fmri":
    return _macaque_files(config, brain, brain_only=brain_only)
  for field in () if brain_only else ("cifar_dir", "things_images_dir"):
    if not d[field]:
      raise MissingDatasetError(f"data.source='files' needs data.{field}: set --config.data.{field}=PATH")
  if not d.things_fmri_dir and not d.brain_rdms_dir:
    raise MissingDatasetError(
      "data.source='files' needs brain data: set --config.data.things_fmri_dir=PATH "
      "(THINGS-fMRI single-trial betas) or --config.data.brain_rdms_dir=PATH "
      "(precomputed fmri_rdm_{ROI}_{sub}.npy + stim_order_{sub}.txt)"
    )
  opt = lambda p: Path(p) if p else None  # noqa: E731
  return DataPaths(opt(d.cifar_dir), opt(d.things_fmri_dir), opt(d.things_images_dir), opt(d.brain_rdms_dir))


def _macaque_files(config, brain: str, *, brain_only: bool = False) -> DataPaths:
  """Paths of a macaque `data.brain` with data.source='files': its release folder, and THINGS images for TVSD."""
  d = config.data
  fields = ("cifar_dir", "things_images_dir") if brain == "tvsd" else ("cifar_dir",)
  fields = () if brain_only else fields
  for field in fields:
    if not d[field]:
      raise MissingDatasetError(f"data.source='files' needs data.{field}: set --config.data.{field}=PATH")
  if not d.brain_dir or not Path(d.brain_dir).expanduser().is_dir():
    where = Path(d.brain_dir).expanduser() if d.brain_dir else "data.brain_dir (not set)"
    raise missing_dataset(brain, where)
  if brain in ASSEMBLIES:
    try:
      assembly_path(Path(d.brain_dir).expanduser(), ASSEMBLIES[brain].identifier)
    except MissingDatasetError as err:
      raise missing_dataset(brain, Path(d.brain_dir).expanduser(), f"no {Path(err.path).name}") from None
  images = Path(d.things_images_dir) if brain == "tvsd" and d.things_images_dir else None
  return DataPaths(Path(d.cifar_dir) if d.cifar_dir else None, None, images, None, Path(d.brain_dir).expanduser())


def load_train_data(paths: DataPaths) -> tuple[batches.TrainData, cifar.CifarData]:
  data = cifar.load_cifar10(paths.cifar_dir)
  train = batches.TrainData(jnp.asarray(data.train_images), jnp.asarray(data.train_labels, jnp.int32))
  return train, data


def load_macaque_responses(config, paths: DataPaths) -> ResponseData:
  """The responses of a macaque `data.brain` that RSA scores: `data.rois` as regions (`roi`), `data.subjects` as
  animals (`subject`, all when empty), TVSD's `data.stimuli` ('per_concept': each concept's first train image, one
  presentation; 'test': the test images, repetitions averaged), at most `data.n_stimuli` stimuli."""
  d, brain = config.data, _brain(config)
  options = {"stimuli": "test" if d.stimuli == "test" else "train"} if brain == "tvsd" else {}
  resp = brains.load_responses(brain, paths.brain_dir, things_images_dir=paths.things_images_dir, **options)
  return brains.rsa_responses(
    resp,
    rois=list(d.rois),
    subjects=[str(s) for s in d.subjects] or None,
    one_per_concept=brain == "tvsd" and d.stimuli == "per_concept",
    n_stimuli=d.n_stimuli or None,
  )


def _macaque_rdms(config, paths: DataPaths, resp: ResponseData):
  """The RSA view of `resp`; a region or animal with fewer than 2 neuroids is refused naming the release."""
  try:
    return resp.to_brain_data(where=f"data.brain={_brain(config)!r}")
  except ValueError as err:
    raise DataFormatError(paths.brain_dir, str(err)) from None


def load_brain(config, paths: DataPaths, *, progress: bool = True):
  d = config.data
  subjects = list(d.subjects) if d.subjects else None
  if paths.brain_dir is not None:
    return _macaque_rdms(config, paths, load_macaque_responses(config, paths))
  if paths.brain_rdms_dir is not None:
    from leut.data import precomputed_rdms

    return precomputed_rdms.load_precomputed_rdms(paths.brain_rdms_dir, rois=list(d.rois), subjects=subjects)
  return things_fmri.load_brain_rdms(paths.things_fmri_dir, **_things_fmri_options(config), progress=progress)


def _things_fmri_options(config) -> dict:
  """The THINGS-fMRI loaders' arguments from `config.data` (the RDMs and the responses read alike)."""
  d = config.data
  return dict(
    subjects=list(d.subjects) if d.subjects else None,
    rois=tuple(d.rois),
    stimuli=d.stimuli,
    zscore=d.zscore,
    n_stimuli=d.n_stimuli or None,
  )


def load_eval_inputs(config, paths: DataPaths, cifar_data: cifar.CifarData | None = None, *, progress=True):
  """The brain data, the stimuli at every evaluated resolution and arm, and the held-out CIFAR test images (read
  from `paths.cifar_dir` without its training batches unless `cifar_data` is given)."""
  if cifar_data is None:
    cifar_data = cifar.load_cifar10(paths.cifar_dir, train=False)
  brain, responses, resp = _brain_and_responses(config, paths, progress=progress)
  if resp is not None:  # a macaque dataset: its responses give the RDMs and the stimulus images

    def load(px: int, upsampled: bool) -> np.ndarray:
      return normalize_01(resp.load_images_01(list(brain.stimuli), px, upsampled))

  else:

    def load(px: int, upsampled: bool) -> np.ndarray:
      return things_images.load_stimulus_images(paths.things_images_dir, brain.stimuli, px=px, upsampled=upsampled)

  stimuli = {}
  for px in config.eval.resolutions:
    stimuli[(int(px), "native")] = load(int(px), False)
    if config.eval.upsampled:
      stimuli[(int(px), "upsampled")] = load(int(px), True)
  n_test = config.eval.test_images or len(cifar_data.test_labels)
  test = np.asarray(batches.normalize(jnp.asarray(cifar_data.test_images[:n_test])))
  calibration = None
  if bn_calibration.configured(config):  # read lazily, per source: CIFAR's training batches only for cifar sources
    calibration = bn_calibration.CalibrationImages(
      config,
      cifar_dir=paths.cifar_dir,
      things_images_dir=paths.things_images_dir,
      eval_stimuli=brain.stimuli,
      load_stimuli=load,
      stimuli=stimuli,
    )
  truth = brain_truth.truth_dir(paths.brain_dir, paths.things_fmri_dir) if config.data.source == "synthetic" else None
  return evaluate_lib.EvalInputs(
    brain, stimuli, test, np.asarray(cifar_data.test_labels[:n_test]), responses, calibration, truth
  )


def load_brain_and_responses(config, paths: DataPaths, *, progress: bool = True):
  """`(brain, responses)`: the brain RDMs (`load_brain`) and the responses CKA and encoding score (`eval_responses`;
  None when only RSA is chosen), each dataset's read once for both."""
  brain, responses, _ = _brain_and_responses(config, paths, progress=progress)
  return brain, responses


def _brain_and_responses(config, paths: DataPaths, *, progress: bool):
  """(brain, responses, a macaque dataset's full responses or None). Each subject's or animal's data are read once:
  a macaque dataset's RDMs come from its responses; THINGS-fMRI's RDMs and responses from one read of each
  subject's betas when CKA or encoding is chosen (`things_fmri_responses.load_things_fmri_rdms_and_responses`)."""
  if paths.brain_dir is not None:
    resp = load_macaque_responses(config, paths)
    brain = _macaque_rdms(config, paths, resp)
    return brain, eval_responses(config, paths, brain, resp), resp
  if paths.brain_rdms_dir is None and metrics_lib.response_metrics(config):
    brain, things = things_fmri_responses.load_things_fmri_rdms_and_responses(
      paths.things_fmri_dir, **_things_fmri_options(config), progress=progress
    )
    return brain, eval_responses(config, paths, brain, things), None
  brain = load_brain(config, paths, progress=progress)
  return brain, eval_responses(config, paths, brain, None), None


def eval_responses(config, paths: DataPaths, brain, resp: ResponseData | None) -> ResponseData | None:
  """The responses CKA and encoding score (`eval.metrics`), rows aligned to `brain.stimuli`; None when only RSA is
  chosen. They are `resp` when given (a macaque dataset's, or THINGS-fMRI's read with the RDMs); otherwise
  THINGS-fMRI's are read from `data.things_fmri_dir` with the RDMs' ROIs, subjects, stimuli and z-scoring
  (`leut.checks` has refused precomputed RDMs, which hold no responses)."""
  if not metrics_lib.response_metrics(config):
    return None
  if resp is None:
    resp = things_fmri_responses.load_things_fmri_responses(paths.things_fmri_dir, **_things_fmri_options(config))
  try:
    return metrics_lib.aligned_responses(resp, brain.stimuli, where=f"data.brain={_brain(config)!r}")
  except ValueError as err:
    raise DataFormatError(paths.brain_dir or paths.things_fmri_dir, str(err)) from None


# ----- step 2: the data and the networks, before any training ------------------------------------------------


def _traced_network(config, rule_name: str) -> tuple[int, set[str]]:
  """(classes, feature layer names) of `rule_name`'s network, by tracing its evaluation on one 32-px image."""
  try:
    rule, trainer = milestones.build(config, rule_name)
  except LeutError:
    raise
  except ValueError as err:  # a rule factory or the trainer refusing a value of the config
    raise ConfigError(
      f"rule {rule_name!r} cannot be built from this config (rule_hparams.{rule_name}?): {err}"
    ) from None
  abstract = trainer.abstract_state(1)
  one = jax.tree.map(
    lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), (abstract.params, abstract.model_state, abstract.rule_state)
  )
  logits, feats = jax.eval_shape(rule.represent, *one, jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
  return int(logits.shape[-1]), set(feats)


def preflight(config, paths: DataPaths, cifar_data: cifar.CifarData, *, training: bool = True) -> None:
  """Check everything the run will need that can be checked in seconds: the training set against the model and the
  config (`training`; an evaluation reads only the test set), each rule's network, the brain data's files and tables
  and every stimulus image. Raises a `LeutError`."""
  n_train = len(cifar_data.train_labels)
  if training and config.data.train_subset > n_train:
    raise ConfigError(
      f"data.train_subset={config.data.train_subset} exceeds the {n_train} training images in {paths.cifar_dir}"
    )
  layers = set()
  for name in config.rules:
    n_classes, rule_layers = _traced_network(config, name)
    layers |= rule_layers
    labels = np.concatenate([np.asarray(cifar_data.train_labels), np.asarray(cifar_data.test_labels)])
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
      raise DataFormatError(
        paths.cifar_dir,
        f"labels range over {int(labels.min())}..{int(labels.max())}, but the model has {n_classes} classes "
        f"({len(cifar_data.class_names)} class names in the data): data.cifar_dir must hold CIFAR-10",
      )
  chosen = dict(config.report.get("layer_for_roi", {}) or {})
  unknown = {roi: layer for roi, layer in chosen.items() if layer not in layers}
  if unknown:
    raise ConfigError(
      f"report.layer_for_roi names layers {unknown} the network does not have; layers: {sorted(layers)}"
    )
  d = config.data
  subjects = list(d.subjects) if d.subjects else None
  if paths.brain_dir is not None:  # a macaque release: responses read, RDMs built, every stimulus image checked
    resp = load_macaque_responses(config, paths)
    _macaque_rdms(config, paths, resp)
    if paths.things_images_dir is not None:
      things_images.check_images(paths.things_images_dir, resp.stimuli)
    else:
      resp.load_images_01(list(resp.stimuli), 32)
    return
  if metrics_lib.response_metrics(config) and paths.things_fmri_dir is not None and paths.brain_rdms_dir is None:
    check_noise_ceilings(config, paths.things_fmri_dir)
  if paths.brain_rdms_dir is not None:
    stimuli = load_brain(config, paths, progress=False).stimuli
  else:
    stimuli = things_fmri.check_release(
      paths.things_fmri_dir, subjects=subjects, rois=tuple(d.rois), stimuli=d.stimuli, n_stimuli=d.n_stimuli or None
    )
  things_images.check_images(paths.things_images_dir, stimuli)


def check_noise_ceilings(config, things_fmri_dir: Path) -> None:
  """The voxel tables hold the noise ceilings encoding normalises by (`leut.data.things_fmri_responses`), checked
  before training so a release without them fails in seconds, not after the training."""
  d = config.data
  column = "nc_testset" if d.stimuli == "test" else "nc_singletrial"
  for f in fmri_files.find_subject_files(things_fmri_dir, list(d.subjects) if d.subjects else None):
    if column not in fmri_files.table_columns(f.voxel_table):
      raise DataFormatError(
        f.voxel_table, f"no {column!r} column (the voxel noise ceilings eval.metrics cka/encoding read)"
      )


# ----- step 3: config.json -----------------------------------------------------------------------------------


def _record(config, command: str) -> dict:
  """The config as config.json stores it (with the command, when given)."""
  current = config_lib.to_dict(config)
  if command:
    current["command"] = command
  return current


def _check_against_workdir(wd: workdir_lib.Workdir, record: dict, code: dict) -> None:
  """Refuse a config or code that would train something other than what `wd` holds; warn about another commit."""
  saved, saved_code = workdir_lib.read_config(wd)
  config_lib.check_compatible(saved, record, wd.root)
  note = config_lib.check_provenance(saved_code, code, wd.root)
  if note:
    warnings.warn(note, CodeVersionWarning, stacklevel=3)


def prepare_workdir(config, workdir, *, command: str = "", code: dict | None = None) -> None:
  """Create the workdir and record its config and the code that made it, or check that an existing one was made
  with a compatible config and code. An existing config.json is not changed here: its evaluation part changes only
  once an evaluation has succeeded (`evaluate`)."""
  wd = workdir_lib.Workdir(workdir)
  wd.root.mkdir(parents=True, exist_ok=True)
  record, code = _record(config, command), code or config_lib.provenance(config)
  exists = wd.config.exists()
  distributed.barrier("leut-config-checked")  # every process has looked before process 0 writes
  if exists:
    _check_against_workdir(wd, record, code)
  else:
    workdir_lib.write_config(wd, record, code)
  distributed.barrier("leut-config-written")


def _merged_code(saved: dict, current: dict) -> dict:
  """Provenance to record after an evaluation: this code's, keeping the settings of rules this config dropped and
  the versions that wrote the workdir before."""
  merged = {**current, "resolved_rules": {**(saved.get("resolved_rules") or {}), **current["resolved_rules"]}}
  earlier = list(saved.get("earlier") or [])
  before = {"version": saved.get("version"), "commit": saved.get("commit")}
  if saved and before != {"version": current.get("version"), "commit": current.get("commit")} and before not in earlier:
    earlier.append(before)
  if earlier:
    merged["earlier"] = earlier
  return merged


# ----- the commands --------------------------------------------------------------------------------------------


def run(config, workdir, *, progress: bool = True, command: str = "", train_only: bool = False) -> dict:
  """Train all rules (resuming where checkpoints exist), evaluate every milestone, write tables/figures/summary.

  `train_only` stops after the milestone checkpoints (training on one machine, scoring on another): `leut evaluate`
  on the same workdir scores them later, reading no training image.
  """
  wd = workdir_lib.Workdir(workdir)
  checks.check_config(config)
  with workdir_lib.locked(wd, command or "leut run"):
    code = config_lib.provenance(config)
    existed = wd.config.exists()
    if existed:  # checked before loading any data; config.json itself changes only after an evaluation succeeds
      _check_against_workdir(wd, _record(config, command), code)
    paths = resolve_data(config)
    train_data, cifar_data = load_train_data(paths)
    preflight(config, paths, cifar_data)
    if not existed:
      prepare_workdir(config, wd.root, command=command, code=code)
    for rule_name in config.rules:
      milestones.train_rule(config, wd.root, rule_name, train_data, progress=progress)
    if train_only:
      distributed.barrier("leut-trained")  # every process leaves together, as after a report
      return {}
    return _evaluate(config, wd, paths, cifar_data, code, progress=progress, command=command, fresh=True)


def evaluate(config, workdir, *, progress: bool = True, command: str = "") -> dict:
  """Re-score existing checkpoints (new brain data, resolutions or statistics) and rewrite results and report.

  No training image is read: restore targets come from the config (`milestones.build`), accuracy from the test set.
  """
  wd = workdir_lib.Workdir(workdir)
  checks.check_config(config)
  with workdir_lib.locked(wd, command or "leut evaluate"):
    code = config_lib.provenance(config)
    _check_against_workdir(wd, _record(config, command), code)
    paths = resolve_data(config)
    cifar_data = cifar.load_cifar10(paths.cifar_dir, train=False)
    preflight(config, paths, cifar_data, training=False)
    return _evaluate(config, wd, paths, cifar_data, code, progress=progress, command=command)


def _evaluate(config, wd, paths, cifar_data, code, *, progress: bool, command: str, fresh=False) -> dict:
  """Score, then write tables, config.json, the completion marker and the report, in that order. `fresh`: training
  has just verified or written every milestone, so they are not read an extra time before scoring."""
  if fresh:
    evaluate_lib.check_checkpoints(config, wd.root)
  else:
    evaluate_lib.verify_checkpoints(config, wd.root)
  inputs = load_eval_inputs(config, paths, cifar_data, progress=progress)
  tables = evaluate_lib.evaluate_all(config, wd.root, inputs, progress=progress)
  # Only now, with every table in place, does config.json describe this evaluation; the marker comes last.
  record = _record(config, command)
  saved_code = workdir_lib.read_config(wd)[1] if wd.config.exists() else {}
  workdir_lib.write_config(wd, record, _merged_code(saved_code, code))
  workdir_lib.write_complete(wd, config_lib.evaluation_hash(record))
  # Process 0 wrote the tables; the others must not read them (or draw figures) before it has finished.
  distributed.barrier("leut-results-written")
  if distributed.is_primary():
    report.write_report(wd.root, config)
  distributed.barrier("leut-report-written")
  return tables


def write_report(config, workdir, *, command: str = "leut report") -> dict | None:
  """`leut report`: redraw tables, figures and summary.md from results that a completed evaluation wrote."""
  wd = workdir_lib.Workdir(workdir)
  checks.check_config(config)
  with workdir_lib.locked(wd, command):
    saved, _ = workdir_lib.read_config(wd)
    workdir_lib.check_complete(wd, config_lib.evaluation_hash(saved))
    out = report.write_report(wd.root, config) if distributed.is_primary() else None
    distributed.barrier("leut-report-written")
    return out
