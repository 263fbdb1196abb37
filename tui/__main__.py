"""python -m tui: the rnn-tui command from this checkout."""

import sys

from .cli import main

sys.exit(main())
