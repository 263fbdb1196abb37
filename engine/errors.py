"""One family for the errors a user can cause: a bad setting, file, corpus, device or run
directory. Each message is one sentence meant for the user; the command line turns any of
them into `rnn-tui: error: <message>` (exit status 2). Anything else is a bug, reported with
the path of a log file that holds its traceback."""

from __future__ import annotations


class RnnTuiError(ValueError):
    """Something the user can fix; str() is the message to show, as it is."""
