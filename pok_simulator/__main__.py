"""Entry point of ``python -m pok_simulator``; see :mod:`.cli` for the options."""
import sys

from .cli import main

sys.exit(main())
