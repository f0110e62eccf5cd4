"""Times the data layer on the embedded synthetic default (one CPU core is enough).

  python benchmarks/data_default.py [ROOT]

Prints the seconds for: writing the default dataset (first ensure_default), the
idempotent second call, loading CIFAR, the 6-ROI brain RDMs, and the stimuli at 224 px.
"""

from __future__ import annotations

import sys
import tempfile
import time

from leut.data import ensure_default, load_brain_rdms, load_cifar10, load_stimulus_images


def _timed(label, fn):
  t = time.perf_counter()
  out = fn()
  print(f"{label:<36s} {time.perf_counter() - t:7.2f} s")
  return out


def main(root: str) -> None:
  d = _timed("ensure_default (write)", lambda: ensure_default(root))
  _timed("ensure_default (again)", lambda: ensure_default(root))
  c = _timed("load_cifar10", lambda: load_cifar10(d.cifar_dir))
  b = _timed("load_brain_rdms (6 ROIs x 3 subjects)", lambda: load_brain_rdms(d.things_fmri_dir, progress=False))
  x = _timed("load_stimulus_images (224 px)", lambda: load_stimulus_images(d.things_images_dir, b.stimuli, px=224))
  print(f"cifar train {c.train_images.shape}, rdms {b.rdms_RxJxSxS.shape}, stimuli {x.shape}")


if __name__ == "__main__":
  if len(sys.argv) > 1:
    main(sys.argv[1])
  else:
    with tempfile.TemporaryDirectory() as tmp:
      main(tmp)
