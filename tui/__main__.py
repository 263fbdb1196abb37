"""`python -m tui` and the `rnn-tui` command: tui.cli.main, behind a guard for ctrl+c (also
what `rnn-tui serve` runs for each browser tab).

Importing the program (torch, above all) takes a second or two; ctrl+c in that time ends
the command with one line instead of a traceback from the middle of an import."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from tui.cli import main as cli_main
    except KeyboardInterrupt:
        print("rnn-tui: interrupted", file=sys.stderr)
        return 130
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
