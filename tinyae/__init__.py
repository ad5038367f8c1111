"""tinyae: sensor time series -> int8 dense autoencoder -> TFLM / compiled C on a microcontroller,
verified against TFLM on the host.

The package holds the one command (`tinyae`, tinyae/cli.py) and the infrastructure every stage
shares (errors, host C builds, argument types). The pipeline lives in `tinyae.train` (the folder
train/), the host side of the device in `tinyae.tools` (the folder tools/): tinyae/train and
tinyae/tools are symlinks to them, so nothing named `train` or `tools` is installed into site-packages.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tinyae")  # pyproject.toml is the one source
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
