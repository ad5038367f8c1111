"""`python -m tinyae` is the `tinyae` command (for subprocesses that hold a Python path, not a PATH)."""

import sys

from tinyae.cli import main

sys.exit(main())
