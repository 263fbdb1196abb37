"""The cells (engine/cells) and the models built from a ModelSpec, on both paths.

Every cell: its parameters are the book's (names, order, shapes, initialization); its
gradients pass gradcheck in float64; the fast path computes the book path's loss, gradients
and state on every route it has (deep and embedded too, from a zero and a carried state,
over several training steps with either iterator's state handling); the LSTM is
torch.nn.LSTM's; the GRU is a transcription of the book's equations (and not torch.nn.GRU's).
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
import torch
from torch.nn import functional as F

from engine import fast
from engine.cells import ACTIVATIONS, CELLS, gru, lstm, rnn
from engine.checkpoint import PARAM_NAMES
from engine.config import TrainConfig, estimated_bytes as config_estimated_bytes
from engine.data import load_corpus, seq_data_iter_random, seq_data_iter_sequential
from engine.generate import predict
from engine.implementations import BOOK, get_implementation, make_model
from engine.model import (ModelSpec, RNNModel, RNNModelScratch, check_params, estimated_bytes,
                          get_model_params, param_names, param_shapes)
from engine.sampling import GREEDY, Sampling
from engine.train import loss

REL = 1e-5
V, H, E = 7, 6, 4  # tiny sizes for exact checks

BOOK_NAMES = {  # d2l 8.5, 9.1, 9.2, as printed
    "rnn": ("W_xh", "W_hh", "b_h", "W_hq", "b_q"),
    "gru": ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h", "W_hq", "b_q"),
    "lstm": ("W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f", "W_xo", "W_ho", "b_o",
             "W_xc", "W_hc", "b_c", "W_hq", "b_q"),
}


@pytest.fixture(autouse=True)
def _fresh_route_cache(monkeypatch):
    monkeypatch.delenv(fast.ROUTE_ENV, raising=False)
    fast.clear_route_cache()
    yield
    fast.clear_route_cache()


def spec_of(cell="rnn", layers=1, input="onehot", activation="tanh", vocab_size=V,
            num_hiddens=H, embed_size=E) -> ModelSpec:
    return ModelSpec(vocab_size, num_hiddens, cell, layers, input, embed_size, activation)


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.detach().double(), want.detach().double()
    return float((got - want).norm() / want.norm())


def assert_close(got, want, rel=REL, what=""):
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    err = rel_err(got, want)
    assert err <= rel, f"{what}: relative error {err:.2e} > {rel:.0e}"


def random_params(spec: ModelSpec, seed=0, dtype=torch.float32, scale=0.5):
    """Every parameter random, biases too, so that a misplaced one shows."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
            .requires_grad_(True) for shape in param_shapes(spec).values()]


def random_state(spec: ModelSpec, batch_size, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    n = CELLS[spec.cell].num_states * spec.num_layers
    return tuple(torch.randn((batch_size, spec.num_hiddens), generator=g, dtype=torch.float64)
                 .to(dtype) for _ in range(n))


# ---- the registry and the book's parameters ---------------------------------------------------

@pytest.mark.parametrize("name", CELLS)
def test_each_cell_has_the_books_parameters(name):
    cell = CELLS[name]
    assert cell.name == name and cell.param_names == BOOK_NAMES[name]
    shapes = cell.param_shapes(V, H, V)
    assert tuple(shapes) == BOOK_NAMES[name]
    params = cell.get_params(V, H, "cpu", torch.Generator().manual_seed(0))
    assert [tuple(p.shape) for p in params] == list(shapes.values())
    for pname, p in zip(cell.param_names, params):
        assert p.requires_grad and p.dtype == torch.float32
        if pname.startswith("b_"):
            assert torch.count_nonzero(p) == 0, pname
        else:
            assert p.shape[0] in (V, H)
    big = torch.cat([p.detach().flatten() for n, p in
                     zip(cell.param_names, cell.get_params(50, 200, "cpu")) if n.startswith("W")])
    assert abs(big.std().item() - 0.01) < 0.0005 and abs(big.mean().item()) < 0.0005
    state = cell.init_state(3, H, "cpu")
    assert len(state) == cell.num_states and all(s.shape == (3, H) and not s.any() for s in state)
    assert cell.num_gates == {"rnn": 1, "gru": 3, "lstm": 4}[name]
    assert cell.title.startswith(name.upper())


@pytest.mark.parametrize("name", CELLS)
def test_the_one_layer_spec_is_the_books_get_params(name):
    """One seed, the same numbers: the book's get_params and the spec's model."""
    book = CELLS[name].get_params(V, H, "cpu", torch.Generator().manual_seed(3))
    spec = spec_of(name)
    ours = get_model_params(spec, "cpu", torch.Generator().manual_seed(3))
    assert tuple(param_shapes(spec)) == BOOK_NAMES[name]
    assert all(torch.equal(a, b) for a, b in zip(ours, book)) and len(ours) == len(book)


def test_the_default_spec_pins_todays_parameters():
    """The book's model as this program drew it before cells existed (old checkpoints load):
    W_xh, W_hh, W_hq from one CPU generator in that order, times 0.01; zero biases."""
    spec = ModelSpec()
    assert (spec.vocab_size, spec.num_hiddens, spec.cell, spec.num_layers, spec.input,
            spec.activation) == (28, 512, "rnn", 1, "onehot", "tanh")
    assert tuple(param_shapes(spec)) == PARAM_NAMES
    g = torch.Generator().manual_seed(0)
    W_xh, W_hh, W_hq = (torch.randn(size=s, generator=g) * 0.01
                        for s in ((28, 512), (512, 512), (512, 28)))
    want = [W_xh, W_hh, torch.zeros(512), W_hq, torch.zeros(28)]
    for params in (get_model_params(spec, "cpu", torch.Generator().manual_seed(0)),
                   rnn.get_params(28, 512, "cpu", torch.Generator().manual_seed(0)),
                   make_model(spec, "cpu", "fast", generator=torch.Generator().manual_seed(0)).params):
        assert all(torch.equal(p, w) for p, w in zip(params, want)) and len(params) == 5
    assert estimated_bytes(spec, 32, 35) == config_estimated_bytes(TrainConfig(), 28)


def test_engine_model_still_exports_the_chapters_functions():
    from engine import model
    assert model.get_params is rnn.get_params and model.rnn is rnn.rnn
    assert model.init_rnn_state is rnn.init_rnn_state


# ---- the switches -----------------------------------------------------------------------------

def test_embedding_adds_w_emb_and_layer_0_reads_embed_size():
    shapes = param_shapes(spec_of("gru", input="embedding", embed_size=5))
    assert list(shapes)[0] == "W_emb" and shapes["W_emb"] == (V, 5)
    assert shapes["W_xz"] == shapes["W_xr"] == shapes["W_xh"] == (5, H)
    assert set(shapes) - {"W_emb"} == set(BOOK_NAMES["gru"])
    assert "W_emb" not in param_shapes(spec_of("gru"))
    W_emb = get_model_params(spec_of(input="embedding", embed_size=300), "cpu",
                             torch.Generator().manual_seed(0))[0]
    assert W_emb.shape == (V, 300) and abs(W_emb.std().item() - 1) < 0.05  # nn.Embedding's


def test_embedding_input_is_a_row_of_w_emb():
    spec = spec_of("lstm", input="embedding")
    params = random_params(spec)
    net = RNNModel(spec, "cpu", params=params)
    X = torch.tensor([[3, 1, 4]])
    with torch.no_grad():
        Y, state = net(X, net.begin_state(1))
        # the same model on one-hot inputs whose W_x* are W_emb W_x*: X W_emb W_x
        onehot = spec_of("lstm")
        folded = [p.detach().clone() for p in params[1:]]
        for i, name in enumerate(lstm.LAYER_NAMES):
            if name.startswith("W_x"):
                folded[i] = params[0].detach() @ folded[i]
        Y1, state1 = RNNModel(onehot, "cpu", params=folded)(X, net.begin_state(1))
    assert_close(Y, Y1, what="outputs")
    assert_close(state[1], state1[1], what="memory cell")


def test_relu_changes_the_rnn_activation_and_only_the_rnn_takes_it():
    tanh, relu = spec_of(), spec_of(activation="relu")
    assert param_shapes(tanh) == param_shapes(relu)
    params = random_params(tanh)
    X = torch.tensor([[0, 5, 2, 2]])
    H0 = torch.zeros(1, H)
    with torch.no_grad():
        (Y_t, (H_t,)), (Y_r, (H_r,)) = (RNNModel(s, "cpu", params=params)(X, (H0,))
                                        for s in (tanh, relu))
        W_xh, W_hh, b_h, W_hq, b_q = params
        h = H0
        for x in F.one_hot(X.T, V).float():
            h = torch.relu(x @ W_xh + h @ W_hh + b_h)
    assert_close(H_r, h, what="relu state")
    assert (H_r >= 0).all() and (H_t < 0).any()
    assert not torch.allclose(Y_t, Y_r)
    assert ACTIVATIONS["relu"] is torch.relu
    for cell in ("gru", "lstm"):
        with pytest.raises(ValueError, match=f"activation 'relu' is for the rnn cell; the {cell}"):
            spec_of(cell, activation="relu")


def test_deep_models_have_parameters_per_layer():
    spec = spec_of("lstm", layers=3)
    shapes = param_shapes(spec)
    per_layer = len(lstm.LAYER_NAMES)
    assert len(shapes) == 3 * per_layer + 2
    assert list(shapes)[:per_layer] == list(lstm.LAYER_NAMES)
    assert list(shapes)[per_layer:2 * per_layer] == [f"{n}_l1" for n in lstm.LAYER_NAMES]
    assert shapes["W_xi"] == (V, H) and shapes["W_xi_l1"] == shapes["W_xi_l2"] == (H, H)
    assert list(shapes)[-2:] == ["W_hq", "b_q"]
    net = RNNModel(spec, "cpu", generator=torch.Generator().manual_seed(0))
    state = net.begin_state(2)
    assert len(state) == 6 and all(s.shape == (2, H) for s in state)
    assert len({id(s) for s in state}) == 6  # no layer shares a state tensor
    Y, new = net(torch.zeros(2, 3, dtype=torch.long), state)
    assert Y.shape == (6, V) and len(new) == 6


def test_deep_is_the_layers_stacked_one_on_another():
    """Layer 1 reads layer 0's hidden states; the output layer reads the top layer's."""
    spec = spec_of("gru", layers=2)
    params = random_params(spec)
    net = RNNModel(spec, "cpu", params=params)
    X = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1]])
    state = random_state(spec, 2)
    with torch.no_grad():
        Y, (H0, H1) = net(X, state)
        n = len(gru.LAYER_NAMES)
        inputs = F.one_hot(X.T, V).float()
        Hs0, h0 = [], state[0]
        for x in inputs:
            (h0,) = gru.gru_step(x, (h0,), params[:n])
            Hs0.append(h0)
        Y_top, (h1,) = gru.gru(torch.stack(Hs0), (state[1],), params[n:])
    assert_close(H0, h0, what="layer 0") and assert_close(H1, h1, what="layer 1")
    assert_close(Y, Y_top, what="outputs")


@pytest.mark.parametrize("kwargs, message", [
    ({"cell": "transformer"}, "cell must be one of rnn, gru, lstm, got 'transformer'"),
    ({"num_layers": 0}, "num_layers must be a positive integer, got 0"),
    ({"input": "bytes"}, "input must be one of onehot, embedding, got 'bytes'"),
    ({"activation": "gelu"}, "activation must be one of tanh, relu, got 'gelu'"),
    ({"embed_size": True}, "embed_size must be a positive integer, got True"),
])
def test_a_bad_spec_says_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError) as e:
        ModelSpec(**kwargs)
    assert str(e.value) == message


def test_parameters_of_the_wrong_shape_are_refused():
    spec = spec_of("gru")
    with pytest.raises(ValueError, match="has 11 parameters"):
        make_model(spec, "cpu", "book", params=random_params(spec_of()))
    params = random_params(spec_of("gru", num_hiddens=H + 1))
    with pytest.raises(ValueError, match=r"parameter W_xz has shape \(7, 7\); the model needs \(7, 6\)"):
        check_params(spec, params)


# ---- gradients --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CELLS)
def test_the_books_cell_passes_gradcheck_in_float64(name):
    cell = CELLS[name]
    spec = spec_of(name, vocab_size=4, num_hiddens=3)
    params = random_params(spec, dtype=torch.float64)
    state = tuple(s.requires_grad_(True) for s in random_state(spec, 2, dtype=torch.float64))
    X = F.one_hot(torch.randint(0, 4, (3, 2), generator=torch.Generator().manual_seed(0)), 4).double()

    def f(*args):
        Y, last = cell.forward(X, args[:len(state)], list(args[len(state):]))
        return Y, *last

    assert torch.autograd.gradcheck(f, (*state, *params))


@pytest.mark.parametrize("name, impl", [(n, i) for n in CELLS for i in ("book", "fast")])
def test_deep_embedded_model_passes_gradcheck_in_float64(name, impl, monkeypatch):
    monkeypatch.setenv(fast.ROUTE_ENV, "fallback")  # float64 through plain PyTorch
    spec = spec_of(name, layers=2, input="embedding", vocab_size=4, num_hiddens=3, embed_size=2,
                   activation="relu" if name == "rnn" else "tanh")
    params = random_params(spec, dtype=torch.float64)
    state = tuple(s.requires_grad_(True) for s in random_state(spec, 2, dtype=torch.float64))
    X = torch.randint(0, 4, (2, 3), generator=torch.Generator().manual_seed(0))

    def f(*args):
        net = make_model(spec, "cpu", impl, params=list(args[len(state):]))
        Y, last = net(X, args[:len(state)])
        return Y, *last

    assert torch.autograd.gradcheck(f, (*state, *params))


def test_gate_rows_hands_over_the_kernel_layout_without_a_copy():
    """kernel_layout keeps the values; gate_rows then returns the buffer itself (no copy) and
    each gradient in its W's own layout; on other tensors it copies, with the same numbers."""
    from engine.cells.common import gate_rows, kernel_layout

    g = torch.Generator().manual_seed(0)
    Ws = [torch.randn(3, 4, generator=g, requires_grad=True) for _ in range(4)]
    laid = kernel_layout(*Ws)
    assert all(torch.equal(a, b) and b.is_leaf and b.requires_grad for a, b in zip(Ws, laid))
    rows, copied = gate_rows(*laid), gate_rows(*Ws)
    assert rows.shape == (16, 3) and rows.is_contiguous() and torch.equal(rows, copied)
    assert rows.data_ptr() == laid[0].data_ptr()  # the buffer itself
    weight = torch.randn(16, 3, generator=g)
    for params, out in ((laid, rows), (Ws, copied)):
        grads = torch.autograd.grad((out * weight).sum(), params)
        for k, grad in enumerate(grads):
            assert torch.equal(grad, weight[4 * k:4 * (k + 1)].T)


def test_the_fast_lstm_keeps_its_weights_where_the_kernel_reads_them(monkeypatch):
    from engine.cells.common import _in_kernel_layout

    monkeypatch.setenv(fast.ROUTE_ENV, "lstm")
    spec = spec_of("lstm", layers=2, vocab_size=6, num_hiddens=5)
    params = random_params(spec)
    net = make_model(spec, "cpu", "fast", params=params)
    assert all(torch.equal(a, b) for a, b in zip(params, net.params))
    names = param_names(spec)
    by_name = dict(zip(names, net.params))
    for layer in ("", "_l1"):
        for kind in ("x", "h"):
            assert _in_kernel_layout([by_name[f"W_{kind}{gate}{layer}"] for gate in "ifco"])


@pytest.mark.parametrize("activation", [torch.tanh, torch.relu])
def test_the_rnns_hand_written_backward_passes_gradcheck_in_float64(activation):
    """RNNRecurrence (the fast path's RNN loop off the oneDNN route) against numerical
    gradients, for either activation."""
    from engine.cells.rnn import RNNRecurrence

    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_(True)

    how = RNNRecurrence.ACTIVATIONS[activation]
    assert torch.autograd.gradcheck(lambda XW, H, W_hh: RNNRecurrence.apply(XW, H, W_hh, how),
                                    (rand(4, 3, 5), rand(3, 5), rand(5, 5)))


def test_the_grus_hand_written_backward_passes_gradcheck_in_float64():
    """GRURecurrence (the fast path's GRU loop) against numerical gradients: every input, the
    initial state, each hidden weight, and a loss on every step's H and the last one."""
    from engine.cells.gru import GRURecurrence

    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_(True)

    num_steps, batch_size, h = 4, 3, 5
    args = (rand(num_steps, batch_size, 3 * h), rand(batch_size, h), rand(h, h), rand(h, h),
            rand(h, h))
    assert torch.autograd.gradcheck(GRURecurrence.apply, args)


# ---- the fast path computes the book's numbers ------------------------------------------------

SPECS = [  # (cell, layers, input, activation)
    ("rnn", 1, "onehot", "relu"), ("rnn", 2, "onehot", "tanh"), ("rnn", 1, "embedding", "tanh"),
    ("rnn", 2, "embedding", "relu"),
    ("gru", 1, "onehot", "tanh"), ("gru", 2, "onehot", "tanh"), ("gru", 1, "embedding", "tanh"),
    ("lstm", 1, "onehot", "tanh"), ("lstm", 2, "onehot", "tanh"), ("lstm", 1, "embedding", "tanh"),
    ("lstm", 2, "embedding", "tanh"),
]
BATCH_SIZE, NUM_STEPS, HIDDENS = 8, 12, 48
ITERATORS = {"sequential": seq_data_iter_sequential, "random": seq_data_iter_random}


def routes_of(spec: ModelSpec) -> list[str]:
    return list(fast._routes(torch.device("cpu"), fast.route_kind(spec)))


SPEC_ROUTES = [pytest.param(s, r, id=f"{'-'.join(map(str, s))}-{r}") for s in SPECS
               for r in routes_of(spec_of(*s))]


@pytest.fixture(scope="module")
def book_data(timemachine_corpus):
    return load_corpus(timemachine_corpus.text, 10_000)


def twins(spec: ModelSpec, route: str, monkeypatch, seed=0):
    """The book path's model and the fast path's on `route`, equal but separate parameters.
    The weights drawn larger than the book's 0.01, so that every gate matters."""
    monkeypatch.setenv(fast.ROUTE_ENV, route)
    params = [(p * 10).detach().requires_grad_(True) for p in
              get_model_params(spec, "cpu", torch.Generator().manual_seed(seed))]
    with torch.no_grad():
        for name, p in zip(param_shapes(spec), params):
            if name.startswith("b_"):
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    copy = [p.detach().clone().requires_grad_(True) for p in params]
    book, net = make_model(spec, "cpu", "book", params=params), make_model(spec, "cpu", "fast",
                                                                          params=copy)
    assert net.route.name == route and "unusable" not in net.route.detail  # the one asked for
    return book, net


def loss_and_grads(net, X, Y, state):
    y_hat, last = net(X, state)
    l = loss(y_hat, Y.T.reshape(-1))
    return l, last, torch.autograd.grad(l, net.parameters())


@pytest.mark.parametrize("state_kind", ["zero", "carried"])
@pytest.mark.parametrize("spec_key, route", SPEC_ROUTES)
def test_fast_equals_book(book_data, spec_key, route, state_kind, monkeypatch):
    tokens, vocab = book_data
    spec = spec_of(*spec_key, vocab_size=len(vocab), num_hiddens=HIDDENS, embed_size=16)
    book, net = twins(spec, route, monkeypatch)
    batches = seq_data_iter_sequential(tokens, BATCH_SIZE, NUM_STEPS, random.Random(0))
    first, (X, Y) = next(batches), next(batches)
    state = book.begin_state(BATCH_SIZE)
    if state_kind == "carried":
        with torch.no_grad():
            _, state = book(first[0], state)
        assert min(float(s.abs().max()) for s in state) > 0.01
    l_book, s_book, g_book = loss_and_grads(book, X, Y, state)
    l_fast, s_fast, g_fast = loss_and_grads(net, X, Y, state)
    assert_close(l_fast, l_book, what="loss")
    assert len(s_fast) == len(s_book) == len(state)
    for i, (got, want) in enumerate(zip(s_fast, s_book)):
        assert_close(got, want, what=f"state tensor {i}")
    for name, got, want in zip(param_shapes(spec), g_fast, g_book):
        assert_close(got, want, what=f"gradient of {name}")


@pytest.mark.parametrize("iterator", ITERATORS)
@pytest.mark.parametrize("spec_key, route", SPEC_ROUTES)
def test_fast_trains_as_the_book_does(book_data, spec_key, route, iterator, monkeypatch):
    """Three training steps with each iterator's state handling (sequential: the state carried
    and detached; random: a fresh state per batch): the same losses, norms and parameters."""
    tokens, vocab = book_data
    spec = spec_of(*spec_key, vocab_size=len(vocab), num_hiddens=HIDDENS, embed_size=16)
    book, net = twins(spec, route, monkeypatch, seed=1)
    impl = get_implementation("fast", torch.device("cpu"), spec)
    assert impl.detail == net.route.detail
    batches = ITERATORS[iterator](tokens, BATCH_SIZE, NUM_STEPS, random.Random(2))
    states = {"book": None, "fast": None}
    for _ in range(3):
        X, Y = next(batches)
        results = {}
        for key, model, step in (("book", book, BOOK.train_step), ("fast", net, impl.train_step)):
            state = states[key]
            if state is None or iterator == "random":
                state = model.begin_state(BATCH_SIZE)
            else:
                state = tuple(s.detach() for s in state)
            results[key] = step(model, X, Y, state, 1.0, 1.0)
            states[key] = results[key][2]
        (l_b, n_b, s_b), (l_f, n_f, s_f) = results["book"], results["fast"]
        assert_close(l_f, l_b, what="loss") and assert_close(n_f, n_b, what="gradient norm")
        for got, want in zip(s_f, s_b):
            assert_close(got, want, what="state")
    for name, p_fast, p_book in zip(param_shapes(spec), net.parameters(), book.parameters()):
        assert_close(p_fast, p_book, rel=1e-6, what=name)


@pytest.mark.parametrize("spec_key, route", SPEC_ROUTES)
def test_generation_is_the_same_on_every_route(book_data, spec_key, route, monkeypatch):
    _, vocab = book_data
    spec = spec_of(*spec_key, vocab_size=len(vocab), num_hiddens=HIDDENS, embed_size=16)
    book, net = twins(spec, route, monkeypatch)
    for sampling in (GREEDY, Sampling("temperature", temperature=1.0)):
        texts = [predict("time traveller", 30, m, vocab, "cpu", sampling=sampling,
                         generator=torch.Generator().manual_seed(0)).text for m in (book, net)]
        assert texts[0] == texts[1]


# ---- the LSTM is torch.nn.LSTM's, the GRU is the book's -------------------------------------

@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_equals_torch_nn_lstm_with_its_weights(layers):
    spec = spec_of("lstm", layers=layers)
    params = random_params(spec)
    net = RNNModel(spec, "cpu", params=params)
    torch_lstm = torch.nn.LSTM(V, H, layers)
    n = len(lstm.LAYER_NAMES)
    with torch.no_grad():
        for layer in range(layers):
            W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c = \
                params[layer * n:(layer + 1) * n]
            # PyTorch's gate order: i, f, g (the candidate), o; weights as x @ W.T
            getattr(torch_lstm, f"weight_ih_l{layer}").copy_(torch.cat([W_xi, W_xf, W_xc, W_xo], 1).T)
            getattr(torch_lstm, f"weight_hh_l{layer}").copy_(torch.cat([W_hi, W_hf, W_hc, W_ho], 1).T)
            getattr(torch_lstm, f"bias_ih_l{layer}").copy_(torch.cat([b_i, b_f, b_c, b_o]))
            getattr(torch_lstm, f"bias_hh_l{layer}").zero_()
    W_hq, b_q = params[-2:]
    X = torch.randint(0, V, (3, 5), generator=torch.Generator().manual_seed(0))
    state = random_state(spec, 3)
    Y, last = net(X, state)
    outputs, (H_n, C_n) = torch_lstm(F.one_hot(X.T, V).float(),
                                     (torch.stack(state[0::2]), torch.stack(state[1::2])))
    Y_torch = outputs.flatten(0, 1) @ W_hq + b_q
    assert_close(Y, Y_torch, what="outputs")
    for layer in range(layers):
        assert_close(last[2 * layer], H_n[layer], what=f"H of layer {layer}")
        assert_close(last[2 * layer + 1], C_n[layer], what=f"C of layer {layer}")
    # and the gradient of the input weights of the first gate, through both
    g_ours = torch.autograd.grad(Y.square().sum(), params[0])[0]
    g_torch = torch.autograd.grad(Y_torch.square().sum(), torch_lstm.weight_ih_l0)[0]
    assert_close(g_ours, g_torch[:H].T, what="gradient of W_xi")


def book_gru_equations(inputs, H, params):
    """d2l 9.1's equations, written out once more."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    outputs = []
    for X in inputs:
        Z = torch.sigmoid(X @ W_xz + H @ W_hz + b_z)
        R = torch.sigmoid(X @ W_xr + H @ W_hr + b_r)
        H_tilde = torch.tanh(X @ W_xh + (R * H) @ W_hh + b_h)
        H = Z * H + (1 - Z) * H_tilde
        outputs.append(H @ W_hq + b_q)
    return torch.cat(outputs), H


@pytest.mark.parametrize("route", ["book", "fallback"])
def test_gru_is_the_books_equations_and_not_torch_nn_gru(route, monkeypatch):
    spec = spec_of("gru")
    params = random_params(spec, scale=1.0)
    if route == "book":
        net = make_model(spec, "cpu", "book", params=params)
    else:
        monkeypatch.setenv(fast.ROUTE_ENV, route)
        net = make_model(spec, "cpu", "fast", params=params)
        assert net.route.name == route
    X = torch.randint(0, V, (3, 6), generator=torch.Generator().manual_seed(0))
    state = random_state(spec, 3)
    with torch.no_grad():
        Y, (H_n,) = net(X, state)
        inputs = F.one_hot(X.T, V).float()
        Y_book, H_book = book_gru_equations(inputs, state[0], params)
        assert_close(Y, Y_book, what="outputs") and assert_close(H_n, H_book, what="state")
        # torch.nn.GRU with the same weights resets after the product: another model
        W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
        torch_gru = torch.nn.GRU(V, H)
        torch_gru.weight_ih_l0.copy_(torch.cat([W_xr, W_xz, W_xh], 1).T)  # r, z, n
        torch_gru.weight_hh_l0.copy_(torch.cat([W_hr, W_hz, W_hh], 1).T)
        torch_gru.bias_ih_l0.copy_(torch.cat([b_r, b_z, b_h]))
        torch_gru.bias_hh_l0.zero_()
        _, H_torch = torch_gru(inputs, state[0].unsqueeze(0))
    assert rel_err(H_torch[0], H_book) > 1e-3


def test_the_books_model_class_runs_every_cell():
    """d2l's usage, RNNModelScratch(vocab, hiddens, device, get_params, init_state, forward),
    is RNNModel of the one-layer spec."""
    for name, module, init, forward in (("rnn", rnn, rnn.init_rnn_state, rnn.rnn),
                                        ("gru", gru, gru.init_gru_state, gru.gru),
                                        ("lstm", lstm, lstm.init_lstm_state, lstm.lstm)):
        g = torch.Generator().manual_seed(0)
        scratch = RNNModelScratch(V, H, "cpu", module.get_params, init, forward, generator=g)
        ours = RNNModel(spec_of(name), "cpu", generator=torch.Generator().manual_seed(0))
        X = torch.tensor([[1, 2, 3], [3, 2, 1]])
        with torch.no_grad():
            (Y1, s1), (Y2, s2) = (m(X, m.begin_state(2)) for m in (scratch, ours))
        assert torch.equal(Y1, Y2) and all(torch.equal(a, b) for a, b in zip(s1, s2))


# ---- routes -----------------------------------------------------------------------------------

def test_each_kind_of_model_has_its_routes():
    assert routes_of(ModelSpec()) == ["onednn", "rnn_tanh", "fallback"]
    assert routes_of(spec_of(activation="relu")) == ["onednn", "rnn_relu", "fallback"]
    assert routes_of(spec_of(layers=2)) == ["rnn_tanh", "fallback"]
    assert routes_of(spec_of("gru", layers=2)) == ["fallback"]  # no fused kernel is the book's GRU
    assert routes_of(spec_of("lstm", input="embedding")) == ["lstm", "fallback"]


def test_the_cpu_prefers_onednn_for_the_book_and_the_fused_lstm():
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")
    assert fast.choose_route("cpu").name == "onednn"
    assert fast.choose_route("cpu", spec_of("lstm", layers=2)).name == "lstm"
    assert fast.choose_route("cpu", spec_of("gru")).name == "fallback"
    # chosen once per kind of model, whatever its sizes
    assert fast.choose_route("cpu", spec_of("lstm")) is fast.choose_route(
        "cpu", spec_of("lstm", vocab_size=50, num_hiddens=300))


def test_a_route_that_computes_another_model_is_caught(monkeypatch):
    """The LSTM's gates in the book's order (i, f, o, c) where PyTorch wants i, f, g, o."""
    def wrong_order(params):
        W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c = params
        return [torch.cat([W_xi, W_xf, W_xo, W_xc], 1).T, torch.cat([W_hi, W_hf, W_ho, W_hc], 1).T,
                torch.cat([b_i, b_f, b_o, b_c])]

    monkeypatch.setitem(CELLS, "lstm", dataclasses.replace(CELLS["lstm"], fused_weights=wrong_order))
    monkeypatch.setenv(fast.ROUTE_ENV, "lstm")
    chosen = fast.choose_route("cpu", spec_of("lstm"))
    assert chosen.name == "fallback"
    assert chosen.detail == ("plain PyTorch fallback; lstm unusable: its results differ from "
                             "plain PyTorch's")


def test_a_failing_fused_route_falls_back_and_says_why(monkeypatch):
    def broken(*args):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(fast, "fused", broken)
    monkeypatch.setenv(fast.ROUTE_ENV, "rnn_relu")
    chosen = fast.choose_route("cpu", spec_of(activation="relu"))
    assert (chosen.name, chosen.detail) == (
        "fallback", "plain PyTorch fallback; rnn_relu unusable: RuntimeError: no such kernel")


def test_a_forced_route_of_another_model_falls_back(monkeypatch):
    monkeypatch.setenv(fast.ROUTE_ENV, "lstm")
    chosen = fast.choose_route("cpu", spec_of("gru", layers=2))
    assert chosen.name == "fallback"
    assert chosen.detail == "plain PyTorch fallback; lstm does not compute a 2-layer gru model"
    monkeypatch.setenv(fast.ROUTE_ENV, "warp")
    with pytest.raises(ValueError, match="this model's are fallback"):
        fast.choose_route("cpu", spec_of("gru"))


# ---- on a GPU ---------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("spec_key", SPECS)
def test_cuda_every_route_equals_the_book(book_data, spec_key, monkeypatch):
    tokens, vocab = book_data
    device = torch.device("cuda")
    spec = spec_of(*spec_key, vocab_size=len(vocab), num_hiddens=HIDDENS, embed_size=16)
    X, Y = (t.to(device) for t in next(seq_data_iter_sequential(tokens, BATCH_SIZE, NUM_STEPS,
                                                                random.Random(0))))
    params = get_model_params(spec, device, torch.Generator().manual_seed(0))
    book = make_model(spec, device, "book", params=params)
    l_book, _, g_book = loss_and_grads(book, X, Y, book.begin_state(BATCH_SIZE))
    for route in fast._routes(device, fast.route_kind(spec)):
        monkeypatch.setenv(fast.ROUTE_ENV, route)
        fast.clear_route_cache()
        net = make_model(spec, device, "fast",
                         params=[p.detach().clone().requires_grad_(True) for p in params])
        assert net.route.name == route and "unusable" not in net.route.detail
        l_fast, _, g_fast = loss_and_grads(net, X, Y, net.begin_state(BATCH_SIZE))
        assert_close(l_fast, l_book, what=f"{route}: loss")
        for name, got, want in zip(param_shapes(spec), g_fast, g_book):
            assert_close(got, want, what=f"{route}: gradient of {name}")
    assert math.isfinite(float(l_book))


@pytest.mark.parametrize("cell, gates", [("rnn", set()), ("gru", {"Z", "R"}),
                                         ("lstm", {"I", "F", "O"})])
def test_the_hidden_units_view_sees_each_cells_state_and_gates(cell, gates):
    from engine.data import Vocab, tokenize
    from engine.inspect import hidden_states
    from engine.model import ModelSpec, RNNModel
    vocab = Vocab(tokenize(["the time traveller"], "char"))
    spec = ModelSpec(len(vocab), 6, cell, num_layers=2)
    net = RNNModel(spec, "cpu", generator=torch.Generator().manual_seed(0))
    hs = hidden_states(net, vocab, "the time")
    parts = {"H", "H_l1"} | ({"C", "C_l1"} if cell == "lstm" else set())
    assert set(hs.states) == parts | gates
    assert all(t.shape == (8, 6) for t in hs.states.values())
    for name in gates:  # a gate is a sigmoid: strictly between 0 and 1
        assert float(hs.states[name].min()) > 0 and float(hs.states[name].max()) < 1
    # the recorded H after the last character is the model's own
    _, state = net(torch.tensor([vocab[list("the time")]]), net.begin_state(1))
    torch.testing.assert_close(hs.states["H_l1"][-1], state[net.state_names.index("H_l1")][0])
