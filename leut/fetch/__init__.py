"""leut.fetch: opt-in downloads of public datasets with published checksums (`leut fetch`; never run by `leut run`).

fetch_main(argv) -> exit status         the `leut fetch` command
fetch_dataset(dataset, dest, ...)       download and verify one dataset
check_dataset / check_things_images     verify files a user already has
DATASETS                                the manifest (URLs, sizes, published checksums)
"""

from leut.fetch.cli import fetch_main
from leut.fetch.download import FetchError, download_file, fetch_dataset
from leut.fetch.manifest import DATASETS, Dataset, RemoteFile
from leut.fetch.verify import check_dataset, check_file, check_things_images

__all__ = [
  "DATASETS",
  "Dataset",
  "FetchError",
  "RemoteFile",
  "check_dataset",
  "check_file",
  "check_things_images",
  "download_file",
  "fetch_dataset",
  "fetch_main",
]
