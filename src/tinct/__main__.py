"""``python -m tinct`` runs the command-line interface."""

import sys

from tinct.cli import main

sys.exit(main())
