"""`python -m tui`: the `rnn-tui` command from this checkout (and what `rnn-tui serve` runs for
each browser tab)."""

import sys

from .cli import main

sys.exit(main())
