"""Fuzzing what people type: hyperparameter fields and the prompt box never crash."""

import math

import torch
from hypothesis import given, settings, strategies as st

from engine.config import FIELD_TYPES, ConfigError, TrainConfig, check_field
from engine.data import Vocab, tokenize
from engine.generate import predict
from engine.sampling import Sampling
from engine.model import RNNModelScratch

FIELDS = sorted(FIELD_TYPES)
texts = st.one_of(st.text(max_size=30), st.from_regex(r"-?[0-9_.eE+]{0,12}", fullmatch=True),
                  st.sampled_from(["nan", "inf", "-inf", "1e309", "0", "-0", "1_000", " 3 "]))


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(FIELDS), text=texts)
def test_fields_accept_or_refuse_with_a_message(name, text):
    try:
        value = check_field(name, text)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    # Whatever is accepted is usable: right type, in range, and a valid config as a whole.
    kind = FIELD_TYPES[name]
    assert isinstance(value, kind)
    if name == "val_fraction":  # 0 holds out nothing
        assert 0 <= value < 0.5
        # How many tokens it holds out depends on max tokens: checked with the whole corpus.
        TrainConfig(max_tokens=0).replace(val_fraction=value)
        return
    if kind is float:  # clip 0 clips nothing; a learning rate must move
        assert math.isfinite(value) and (value > 0 or name == "clip" and value == 0)
    TrainConfig().replace(**{name: value})


VOCAB = Vocab(tokenize(["the time traveller for so it will be convenient"], "char"))
NET = RNNModelScratch(len(VOCAB), 8, "cpu", generator=torch.Generator().manual_seed(0))


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(max_size=200), n=st.integers(0, 20),
       temperature=st.sampled_from([0.0, 0.5, 1.0, 2.0]))
def test_prompt_box_any_text(prefix, n, temperature):
    try:
        p = predict(prefix, n, NET, VOCAB, "cpu", sampling=Sampling("temperature", temperature=temperature),
                    generator=torch.Generator().manual_seed(0))
    except ValueError as e:
        assert prefix == "" and "empty" in str(e)
        return
    assert p.prefix == prefix and len(p.text.replace("<unk>", "?")) == n
    assert [c for _, c in p.unknown] == [c for c in prefix if c not in VOCAB]
    assert all(prefix[i] == c for i, c in p.unknown)
