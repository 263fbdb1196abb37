"""The settings file: defaults of the user's own, in TOML, below the command line.

`~/.config/rnn-tui/config.toml` (or `--config PATH`) holds top-level keys named like the
training settings, in either spelling: the field (`num_hiddens`, `batch_size`) or the
command-line flag (`hidden`, `batch-size`). Precedence: built-in defaults < file < flags.
Every problem is reported as `<file>:<line>: <key>: <what is wrong>`, all of them at once.

    # ~/.config/rnn-tui/config.toml
    hidden = 256
    lr = 0.5
    prefixes = ["time traveller", "the machine"]
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the backport (a dependency there)
    import tomli as tomllib

from .config import FIELD_TYPES, FLAGS, SETTINGS, ConfigError, TrainConfig, check_field
from .errors import RnnTuiError
from .files import NotReadable, read_regular_file

CONFIG_FILE = "config.toml"
MAX_SETTINGS_BYTES = 1 << 20  # a settings file is a few lines; this bounds a mistaken one
DEFAULT_SOURCE = "default"
FLAG_SOURCE = "command line"

# The command line's flag names (without "--") and the setting each one sets, from the
# settings' declarations (engine.config); every setting is also accepted by its own name.
FLAG_FIELDS: dict[str, str] = FLAGS

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string",
               tuple: "a list of strings"}


class SettingsError(RnnTuiError):
    """A settings file that cannot be used; one line per problem, each naming file and line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def default_config_path() -> Path:
    """$XDG_CONFIG_HOME/rnn-tui/config.toml, else ~/.config/rnn-tui/config.toml."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "rnn-tui" / CONFIG_FILE


def field_names() -> list[str]:
    return list(SETTINGS)


def setting_for(key: str) -> str | None:
    """The TrainConfig field a key names, in any accepted spelling; None if it names none."""
    known = set(field_names())
    underscored = key.replace("-", "_")
    if underscored in known:
        return underscored
    return FLAG_FIELDS.get(key.replace("_", "-"))


def accepted_keys() -> list[str]:
    """Every spelling a settings file may use."""
    return sorted(set(field_names()) | set(FLAG_FIELDS))


# ---- reading --------------------------------------------------------------------------------

def load_settings(path: str | Path | None = None, must_exist: bool = False) -> dict[str, Any]:
    """Validated overrides {field: value} from a settings file.

    A missing default file means no overrides; a file the user named (must_exist) must exist.
    """
    p = Path(path).expanduser() if path is not None else default_config_path()
    if not p.exists():
        if must_exist:
            raise SettingsError([f"{p}: settings file does not exist"])
        return {}
    if p.is_dir():
        raise SettingsError([f"{p}: is a directory, not a settings file"])
    try:
        data = read_regular_file(p, MAX_SETTINGS_BYTES)
    except NotReadable as e:
        raise SettingsError([f"{p}: {e}"]) from None
    except OSError as e:
        raise SettingsError([f"{p}: cannot be read: {e.strerror or e}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SettingsError([f"{p}: is not UTF-8 text (bad byte at position {e.start})"]) from e
    return parse_settings(text, str(p))


def parse_settings(text: str, source: str) -> dict[str, Any]:
    """The overrides of TOML text; `source` names it in messages. Raises SettingsError."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError([f"{source}: malformed TOML: {e}"]) from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise SettingsError([f"{source}: malformed TOML: arrays or tables nested too deeply"]
                            ) from None
    overrides: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # field -> the key that set it, to catch a setting given twice
    problems = []
    for key, value in table.items():
        where = _location(source, text, key)
        name = setting_for(key)
        if name is None and isinstance(value, dict):
            problems.append(f"{where}: {key}: unknown table; settings are top-level keys, "
                            "written before any [table]")
            continue
        if name is None:
            problems.append(f"{where}: {key}: unknown setting{_suggestion(key)}")
            continue
        if name in spelled:
            problems.append(f"{where}: {key}: sets {name} again (already set as "
                            f"{spelled[name]!r})")
            continue
        spelled[name] = key
        try:
            overrides[name] = check_field(name, _typed(name, value))
        except ConfigError as e:
            problems.append(f"{where}: {key}: {e}")
    if problems:
        raise SettingsError(problems)
    return overrides


def _typed(name: str, value: Any) -> Any:
    """TOML has types: an integer setting wants an integer, not the string "512" or 512.0."""
    kind = FIELD_TYPES[name]
    ok = {
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        tuple: lambda v: isinstance(v, str) or (
            isinstance(v, list) and all(isinstance(x, str) for x in v)),
    }[kind]
    if not ok(value):
        raise ConfigError(f"expected {_TYPE_NAMES[kind]}, got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    kind = names.get(type(value), f"a {type(value).__name__}")
    if isinstance(value, dict):
        return kind
    text = repr(value)
    return f"{kind} ({text if len(text) <= 40 else text[:37] + '...'})"


def _suggestion(key: str) -> str:
    close = difflib.get_close_matches(key, accepted_keys(), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(key.replace("-", "_"), accepted_keys(), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _location(source: str, text: str, key: str) -> str:
    line = find_key_line(text, key)
    return f"{source}:{line}" if line else source


def find_key_line(text: str, key: str) -> int | None:
    """The 1-based line where a top-level key is assigned (`key = `, `"key" = `, `key.x = `)
    or opened as a table (`[key]`, `[[key]]`); None if no such line is found."""
    quoted = "|".join(re.escape(k) for k in (key, json.dumps(key), f"'{key}'"))
    assign = re.compile(rf"^\s*(?:{quoted})\s*[=.]")
    table = re.compile(rf"^\s*\[\[?\s*(?:{quoted})\s*[\].]")
    for number, line in enumerate(text.splitlines(), start=1):
        if assign.match(line) or table.match(line):
            return number
    return None


# ---- combining and showing ------------------------------------------------------------------

def merge(defaults: TrainConfig, file_overrides: dict[str, Any],
          flag_overrides: dict[str, Any]) -> TrainConfig:
    """defaults < file < flags, validated as a whole (ConfigError for a bad combination)."""
    known = set(field_names())
    unknown = sorted((set(file_overrides) | set(flag_overrides)) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return defaults.replace(**{**file_overrides, **flag_overrides})


def value_sources(file_path: str | Path | None, file_overrides: Iterable[str],
            flag_overrides: Iterable[str]) -> dict[str, str]:
    """Where each field's value came from, for render_config."""
    origin = {name: DEFAULT_SOURCE for name in field_names()}
    origin.update({name: str(file_path) for name in file_overrides})
    origin.update({name: FLAG_SOURCE for name in flag_overrides})
    return origin


def render_config(config: TrainConfig, sources: dict[str, str] | None = None) -> str:
    """The settings as TOML that load_settings reads back, each with where it came from."""
    sources = sources or {}
    lines = ["# rnn-tui settings (built-in defaults < settings file < command line)"]
    for name in field_names():
        assignment = f"{name} = {toml_value(getattr(config, name))}"
        origin = re.sub(r"[\x00-\x1f\x7f]", "?", sources.get(name, DEFAULT_SOURCE))
        lines.append(f"{assignment:<40} # {origin}")
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """A TOML literal for a setting's value (strings, integers, floats, lists of strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_string(text: str) -> str:
    # JSON's escapes are TOML's, except that TOML also forbids a raw DEL character.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
