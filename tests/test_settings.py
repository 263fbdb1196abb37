"""The settings file: precedence, every spelling, and each mistake named by file, line and key."""

from __future__ import annotations

import sys
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from engine.config import ConfigError, TrainConfig, check_field
from engine.settings import (FLAG_FIELDS, FLAG_SOURCE, SettingsError, default_config_path,
                             field_names, find_key_line, load_settings, merge, parse_settings,
                             render_config, setting_for, toml_value, value_sources)

DEFAULTS = TrainConfig()


def write(tmp_path, text: str, name="config.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(path, must_exist=True)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# ---- where the file is -----------------------------------------------------------------------

def test_default_config_path(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert default_config_path() == tmp_path / "cfg" / "rnn-tui" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_config_path() == tmp_path / "home" / ".config" / "rnn-tui" / "config.toml"


def test_missing_default_file_means_no_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_settings() == {}
    assert load_settings(tmp_path / "absent.toml", must_exist=False) == {}


def test_missing_named_file_is_an_error(tmp_path):
    path = tmp_path / "absent.toml"
    assert problems(path) == [f"{path}: settings file does not exist"]


def test_directory_and_binary_files(tmp_path):
    assert problems(tmp_path) == [f"{tmp_path}: is a directory, not a settings file"]
    path = tmp_path / "bin.toml"
    path.write_bytes(b"lr = 1\n\xff\xfe")
    assert "is not UTF-8 text" in problems(path)[0]


def test_reads_the_default_file(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "rnn-tui").mkdir()
    write(tmp_path / "rnn-tui", "hidden = 128\n")
    assert load_settings() == {"num_hiddens": 128}


# ---- what the file may say -------------------------------------------------------------------

def test_every_spelling_of_every_setting(tmp_path):
    text = """# my settings
hidden = 128
batch-size = 16
"num_steps" = 20
iter = "random"
max_tokens = 0
sample-every = 5
predict_len = 30
lr = 2          # an integer is a fine learning rate
prefixes = ["the", "time"]
"""
    assert load_settings(write(tmp_path, text), must_exist=True) == {
        "num_hiddens": 128, "batch_size": 16, "num_steps": 20, "iterator": "random",
        "max_tokens": 0, "sample_every": 5, "predict_len": 30, "lr": 2.0,
        "prefixes": ("the", "time")}


def test_alias_table_covers_every_field():
    names = set(field_names())
    assert set(FLAG_FIELDS.values()) <= names
    for name in names:
        assert setting_for(name) == name
        assert setting_for(name.replace("_", "-")) == name
    for flag, name in FLAG_FIELDS.items():
        assert setting_for(flag) == name and setting_for(flag.replace("-", "_")) == name
    assert setting_for("hiden") is None and setting_for("") is None


def test_alias_table_matches_the_command_line():
    cli = pytest.importorskip("tui.cli")
    assert {flag[2:]: name for flag, (name, _) in cli.TRAIN_FLAGS.items()} == FLAG_FIELDS


def test_malformed_toml(tmp_path):
    path = write(tmp_path, 'lr = 0.5\nhidden = = 3\n')
    message, = problems(path)
    assert message.startswith(f"{path}: malformed TOML: ")
    assert "line 2" in message


def test_unknown_key_with_suggestion_and_line(tmp_path):
    path = write(tmp_path, "lr = 0.5\n\nhiden = 128\nbatch_sise = 4\nzzz = 1\n")
    assert problems(path) == [
        f"{path}:3: hiden: unknown setting; did you mean 'hidden'?",
        f"{path}:4: batch_sise: unknown setting; did you mean 'batch_size'?",
        f"{path}:5: zzz: unknown setting",
    ]


def test_unknown_table(tmp_path):
    path = write(tmp_path, "lr = 0.5\n[train]\nhidden = 128\n")
    message, = problems(path)
    assert message.startswith(f"{path}:2: train: unknown table")


@pytest.mark.parametrize("line,expected", [
    ('hidden = "big"', "hidden: expected an integer, got a string ('big')"),
    ("hidden = 12.5", "hidden: expected an integer, got a number (12.5)"),
    ("epochs = true", "epochs: expected an integer, got a boolean (True)"),
    ('lr = "0.1"', "lr: expected a number, got a string ('0.1')"),
    ("corpus = 3", "corpus: expected a string, got an integer (3)"),
    ("prefixes = [1, 2]", "prefixes: expected a list of strings, got a list ([1, 2])"),
    ("seed = 1979-05-27", "seed: expected an integer, got a date"),
    ("batch-size = 0", "batch-size: batch_size must be a positive integer, got 0"),
    ("lr = nan", "lr: lr must be a finite number, got nan"),
    ('iter = "shuffled"', "iter: iterator must be one of sequential, random, got 'shuffled'"),
    ("[lr]", "lr: expected a number, got a table"),
])
def test_wrong_types_and_values_name_the_line(tmp_path, line, expected):
    path = write(tmp_path, f"# settings\n\n{line}\n")
    message, = problems(path)
    assert message.startswith(f"{path}:3: {expected}")


def test_a_setting_given_twice(tmp_path):
    path = write(tmp_path, "hidden = 64\nnum_hiddens = 128\n")
    assert problems(path) == [
        f"{path}:2: num_hiddens: sets num_hiddens again (already set as 'hidden')"]


def test_all_problems_at_once(tmp_path):
    path = write(tmp_path, 'hidden = "x"\nlr = -1\nfoo = 2\nepochs = 3\n')
    found = problems(path)
    assert [p.split(":")[1] for p in found] == ["1", "2", "3"]


def test_find_key_line():
    text = 'a = 1\n  "b" = 2\nc.d = 3\n[e]\n[[f]]\nbb = 4\n'
    assert [find_key_line(text, k) for k in "abcdef"] == [1, 2, 3, None, 4, 5]
    assert find_key_line(text, "bb") == 6


# ---- precedence and --print-config -----------------------------------------------------------

def test_defaults_then_file_then_flags(tmp_path):
    path = write(tmp_path, "hidden = 128\nlr = 0.5\nepochs = 7\n")
    from_file = load_settings(path, must_exist=True)
    flags = {"lr": 0.25}
    config = merge(DEFAULTS, from_file, flags)
    assert config.num_hiddens == 128 and config.epochs == 7  # file over default
    assert config.lr == 0.25                                  # flag over file
    assert config.batch_size == DEFAULTS.batch_size           # default left alone
    origin = value_sources(path, from_file, flags)
    assert origin["num_hiddens"] == str(path) and origin["lr"] == FLAG_SOURCE
    assert origin["batch_size"] == "default"


def test_merge_checks_the_whole(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting"):
        merge(DEFAULTS, {"hidden": 3}, {})
    with pytest.raises(ConfigError, match="would need about"):
        merge(DEFAULTS, {"num_hiddens": 10**9}, {"batch_size": 4096})


def test_render_config_reads_back_the_same(tmp_path):
    path = write(tmp_path, 'hidden = 128\nprefixes = ["a \\"quoted\\" one", "\\u00e9t\\u00e9"]\n')
    from_file = load_settings(path, must_exist=True)
    config = merge(DEFAULTS, from_file, {"lr": 0.125, "corpus": "/tmp/my book.txt"})
    text = render_config(config, value_sources(path, from_file, ["lr", "corpus"]))
    assert tomllib.loads(text) == config.to_dict()
    assert merge(DEFAULTS, parse_settings(text, "printed"), {}) == config
    lines = {line.split(" =")[0]: line for line in text.splitlines() if " = " in line}
    assert lines["num_hiddens"].endswith(f"# {path}")
    assert lines["lr"].endswith("# command line") and lines["epochs"].endswith("# default")
    assert len(lines) == len(fields(TrainConfig))


def test_render_config_survives_odd_sources():
    text = render_config(DEFAULTS, {"lr": "a\nb = 3 # weird\x7f path"})
    assert tomllib.loads(text) == DEFAULTS.to_dict()


# ---- fuzz: nothing but SettingsError or ConfigError ------------------------------------------

FUZZ = hyp_settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=200))
def test_any_text_gives_settings_or_settings_error(text):
    try:
        overrides = parse_settings(text, "fuzz.toml")
    except SettingsError as e:
        assert all(p.startswith("fuzz.toml") for p in e.problems)
        return
    for name, value in overrides.items():
        assert check_field(name, value) == value


keys = st.one_of(st.sampled_from(sorted(set(FLAG_FIELDS) | set(field_names()))),
                 st.text(st.characters(codec="ascii", categories=["L", "N", "Pd"]),
                         min_size=1, max_size=12))
scalars = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=20), st.booleans())
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.lists(st.text(max_size=10), max_size=3))


@FUZZ
@given(st.dictionaries(keys, values, max_size=6))
def test_any_settings_document_gives_a_config_or_a_clear_error(doc):
    text = "".join(f"{toml_value(k)} = {toml_value(v)}\n" for k, v in doc.items())
    try:
        overrides = parse_settings(text, "fuzz.toml")
        config = merge(DEFAULTS, overrides, {})
    except (SettingsError, ConfigError) as e:
        assert str(e)
        return
    for key, value in doc.items():
        name = setting_for(key)
        assert getattr(config, name) == check_field(name, value)


valid_configs = st.builds(
    TrainConfig,
    corpus=st.text(min_size=1, max_size=30).filter(str.strip),
    num_hiddens=st.integers(1, 2048), batch_size=st.integers(1, 256),
    lr=st.floats(1e-6, 1e3), clip=st.floats(1e-6, 1e3), seed=st.integers(0, 2**63 - 1),
    iterator=st.sampled_from(["sequential", "random"]),
    prefixes=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3).map(tuple))


@FUZZ
@given(valid_configs)
def test_render_parse_round_trip(config):
    text = render_config(config, {"corpus": "somewhere"})
    assert merge(DEFAULTS, parse_settings(text, "printed"), {}) == config
