"""``python -m slashd_plugin build app.py``: the same as the `slashd-plugin` script."""

import sys

from .cli import main

sys.exit(main())
