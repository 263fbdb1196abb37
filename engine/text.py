"""Untrusted text made safe to show: what a corpus, a checkpoint, a file name or a user says
is shown to the reader, never obeyed by the terminal.

A raw corpus (or a crafted checkpoint, or a file name) may hold ESC sequences that clear the
screen, retitle the terminal or write the clipboard, a CR that overwrites a line, a BEL. Every
place that shows such text passes it through `printable` first. Markup is the other half, and
the caller's: show the result as plain text (rich `Text`, Textual `Content`, `markup=False`),
never as a markup string, so `[bold]` or `[/]` in a corpus is shown as written.
"""

from __future__ import annotations

import re

# What a terminal may act on, or what would reorder or break what it shows:
# C0 controls (ESC, BEL, CR, ...), DEL, C1 controls (CSI is U+009B), the line and paragraph
# separators, the bidirectional embeddings, overrides and isolates (they reorder text on the
# screen, "Trojan source"), and lone surrogates (no terminal can be sent one: encoding it fails).
_OTHERS = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_LINE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_BLOCK = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # the same but tab and newline

# One visible symbol per C0 control and DEL: the Unicode control pictures (ESC is ␛, BEL ␇,
# CR ␍), except newline and tab, which read better as the keys that type them.
_SYMBOLS = {chr(c): chr(0x2400 + c) for c in range(0x20)} | {"\x7f": "\u2421",
                                                             "\n": "⏎", "\t": "⇥"}


def _shown(match: re.Match) -> str:
    ch = match.group()
    symbol = _SYMBOLS.get(ch)
    if symbol is not None:
        return symbol
    code = ord(ch)  # C1 controls have no pictures; the rest are not characters to show
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, multiline: bool = False) -> str:
    """`text` with every control character made visible, so it can go to a terminal.

    C0 controls and DEL become their control pictures (ESC ␛, BEL ␇, CR ␍, NUL ␀, DEL ␡);
    C1 controls become `\\x9b`-style escapes; line and paragraph separators, bidirectional
    controls and lone surrogates become `\\u2028`-style escapes. Newline and tab are kept
    where the caller shows several lines (`multiline=True`: a generated text, a notification);
    elsewhere (a log line, a table cell, a panel row) they show as ⏎ and ⇥. Everything else,
    including every printable character of any script and emoji, is left as it is.
    """
    pattern = _UNSAFE_BLOCK if multiline else _UNSAFE_LINE
    return pattern.sub(_shown, text)
