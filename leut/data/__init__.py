"""Data layer: CIFAR-10, THINGS-fMRI brain RDMs, THINGS stimulus images, synthetic stand-ins.

Public API (re-exported here):
  load_cifar10(path) -> CifarData
  load_brain_rdms(things_fmri_dir, ...) -> BrainData
  load_stimulus_images(images_dir, stimuli, px=..., upsampled=False) -> (S, px, px, 3) float32
  raw_images_01(images_dir, stimuli, px=...) -> (S, px, px, 3) float32 in [0, 1]
  ensure_default(root) -> DefaultData(cifar_dir, things_fmri_dir, things_images_dir)
  write_cifar10 / write_things_fmri: synthetic data in the real on-disk formats
  ground_truth_rdms(things_fmri_dir, stimuli, rois): noise-free RDMs of the simulated ROIs
  load_precomputed_rdms / write_precomputed_rdms: fmri_rdm_{ROI}_{sub}.npy + stim_order_{sub}.txt
  load_responses(brain, brain_dir, ...) -> ResponseData (things_fmri, majajhong2015, freemanziemba2013, tvsd);
    ResponseData.to_brain_data() -> BrainData; synthetic_release(brain, synthetic_dir): the offline stand-ins
Not imported here (heavier dependencies): nifti_betas.load_nifti_brain_rdms (nilearn),
cifar_tfds.load_cifar10_tfds (tensorflow-datasets), brain_rdm_export.brain_rdms_main (CLI).
"""

from leut.data.brains import BRAINS, load_responses, synthetic_release
from leut.data.cifar import CifarData, load_cifar10
from leut.data.errors import DataFormatError, MissingDatasetError, UnknownRoiError
from leut.data.normalization import CIFAR_MEAN, CIFAR_STD
from leut.data.precomputed_rdms import load_precomputed_rdms, write_precomputed_rdms
from leut.data.responses import ResponseData
from leut.data.simulated_brain import ground_truth_rdms
from leut.data.synthetic import DefaultData, ensure_default, write_cifar10, write_things_fmri
from leut.data.things_fmri import BrainData, load_brain_rdms
from leut.data.things_images import load_stimulus_images, raw_images_01

__all__ = [
  "BRAINS",
  "BrainData",
  "CIFAR_MEAN",
  "CIFAR_STD",
  "CifarData",
  "DataFormatError",
  "DefaultData",
  "MissingDatasetError",
  "UnknownRoiError",
  "ensure_default",
  "ground_truth_rdms",
  "load_brain_rdms",
  "load_cifar10",
  "load_stimulus_images",
  "raw_images_01",
  "ResponseData",
  "load_responses",
  "synthetic_release",
  "load_precomputed_rdms",
  "write_cifar10",
  "write_precomputed_rdms",
  "write_things_fmri",
]
