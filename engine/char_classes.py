"""The character classes that "find the unit" looks for (engine/inspect.py), without torch, so
the command line can list them before anything heavy is imported."""

VOWELS = frozenset("aeiouAEIOU")
CHAR_CLASSES = {
    "space": "the character just read is a space",
    "vowel": "the character just read is a vowel (a, e, i, o, u)",
    "quote": "inside double quotes (an odd number of \" read so far)",
    "line": "position in the line (characters since the last newline)",
    "sentence": "after a full stop (the last non-space character read is '.')",
}
