"""`python -m vitkit.cli ...`, the same program as `vitkit` and `python -m vitkit`."""

import sys

from . import main

sys.exit(main())
