"""The fast implementation computes the book's numbers, on every route it can take.

Every route runs on the CPU here: "onednn" is the CPU's own, "rnn_tanh" is PyTorch's fused RNN
op (cuDNN on a GPU, PyTorch's native loop on a CPU: the same weight layout either way), and
"fallback" is plain PyTorch. The GPU tests at the end run where CUDA is available.
"""

from __future__ import annotations

import math
import random
import warnings

import pytest
import torch

from engine import fast
from engine.config import TrainConfig
from engine.data import load_corpus, seq_data_iter_random, seq_data_iter_sequential
from engine.devices import to_device
from engine.generate import predict
from engine.implementations import BOOK, fast_implementation, get_implementation
from engine.model import RNNModelScratch, get_params
from engine.train import loss
from engine.trainer import Trainer

ROUTES = ("onednn", "rnn_tanh", "fallback")
ITERATORS = {"sequential": seq_data_iter_sequential, "random": seq_data_iter_random}
BATCH_SIZE, NUM_STEPS, NUM_HIDDENS = 32, 35, 512  # the book's
REL = 1e-5

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def _fresh_route_cache():
    fast.clear_route_cache()
    yield
    fast.clear_route_cache()


@pytest.fixture(params=ROUTES)
def route(request, monkeypatch) -> str:
    monkeypatch.setenv(fast.ROUTE_ENV, request.param)
    return request.param


@pytest.fixture(scope="module")
def book_data(timemachine_corpus):
    """The book's tokens (first 10,000) and vocabulary."""
    return load_corpus(timemachine_corpus.text, 10_000)


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """||got - want|| / ||want||, in float64."""
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    return float((got - want).norm() / want.norm())


def assert_close(got, want, rel=REL, what=""):
    err = rel_err(got, want)
    assert err <= rel, f"{what}: relative error {err:.2e} > {rel:.0e}"


def assert_same_update(p_fast, p_book, p0):
    """p_fast - p0 == p_book - p0 within REL of that update, beyond float32's rounding of p."""
    p_fast, p_book, p0 = (p.detach().double() for p in (p_fast, p_book, p0))
    diff = float((p_fast - p_book).norm())
    bound = REL * float((p_book - p0).norm()) + torch.finfo(torch.float32).eps * float(p0.norm())
    assert diff <= bound, f"update differs by {diff:.2e} > {bound:.2e}"


def twin_models(impl, vocab_size, device="cpu", seed=0):
    """The book's model and `impl`'s, from one seed: equal but separate parameters."""
    params = get_params(vocab_size, NUM_HIDDENS, device, torch.Generator().manual_seed(seed))
    copy = [p.detach().clone().requires_grad_(True) for p in params]
    return (RNNModelScratch(vocab_size, NUM_HIDDENS, device, params=params),
            impl.make_model(vocab_size, NUM_HIDDENS, device, params=copy))


def two_batches(book_data, iterator, seed=0):
    tokens, _ = book_data
    batches = ITERATORS[iterator](tokens, BATCH_SIZE, NUM_STEPS, random.Random(seed))
    return next(batches), next(batches)


def initial_state(kind, net, first_batch):
    """Zeros, or the state the book's model reaches after the first batch (non-zero)."""
    state = net.begin_state(BATCH_SIZE)
    if kind == "carried":
        with torch.no_grad():
            _, state = net(first_batch[0], state)
    return state


def loss_and_grads(net, X, Y, state):
    y_hat, (H,) = net(X, state)
    l = loss(y_hat, Y.T.reshape(-1))
    return l, H, torch.autograd.grad(l, net.parameters())


# ---- the route --------------------------------------------------------------------------------

def test_cpu_takes_the_onednn_route(monkeypatch):
    monkeypatch.delenv(fast.ROUTE_ENV, raising=False)
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")
    impl = get_implementation("fast", torch.device("cpu"))
    assert impl.name == "fast" and impl.detail == "oneDNN fused kernels"
    assert fast.choose_route("cpu") is fast.choose_route(torch.device("cpu"))  # chosen once


def test_route_is_forced_by_the_environment(route):
    chosen = fast.choose_route("cpu")
    assert chosen.name == route and "unusable" not in chosen.detail
    assert fast_implementation(torch.device("cpu")).detail == chosen.detail


def test_unknown_route_is_an_error(monkeypatch):
    monkeypatch.setenv(fast.ROUTE_ENV, "warp-drive")
    with pytest.raises(ValueError, match="onednn, rnn_tanh, fallback"):
        fast.choose_route("cpu")


def test_a_failing_route_falls_back_and_says_why(monkeypatch):
    def broken(*args):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(fast, "rnn_onednn", broken)
    monkeypatch.setenv(fast.ROUTE_ENV, "onednn")
    chosen = fast.choose_route("cpu")
    assert chosen.name == "fallback"
    assert chosen.detail == "plain PyTorch fallback; onednn unusable: RuntimeError: no such kernel"


# ---- the same numbers as the book -------------------------------------------------------------

@pytest.mark.parametrize("iterator", ITERATORS)
@pytest.mark.parametrize("state_kind", ["zero", "carried"])
def test_same_loss_gradients_and_state(route, book_data, iterator, state_kind):
    book, net = twin_models(fast_implementation(torch.device("cpu")), len(book_data[1]))
    first, (X, Y) = two_batches(book_data, iterator)
    state = initial_state(state_kind, book, first)
    if state_kind == "carried":
        assert state[0].abs().max() > 0.01
    l_book, H_book, g_book = loss_and_grads(book, X, Y, state)
    l_fast, H_fast, g_fast = loss_and_grads(net, X, Y, state)
    assert_close(l_fast, l_book, what="loss")
    assert_close(H_fast, H_book, what="final state")
    for name, got, want in zip(["W_xh", "W_hh", "b_h", "W_hq", "b_q"], g_fast, g_book):
        assert got.shape == want.shape
        assert_close(got, want, what=f"gradient of {name}")


def test_gradient_reaches_the_initial_state(route, book_data):
    """Not needed for training (the state is detached), but the recurrence is a whole function."""
    book, net = twin_models(fast_implementation(torch.device("cpu")), len(book_data[1]))
    first, (X, Y) = two_batches(book_data, "sequential")
    state = initial_state("carried", book, first)
    grads = []
    for model in (book, net):
        H0 = state[0].clone().requires_grad_(True)
        y_hat, _ = model(X, (H0,))
        grads.append(torch.autograd.grad(loss(y_hat, Y.T.reshape(-1)), H0)[0])
    assert_close(grads[1], grads[0], what="gradient of the initial state")


@pytest.mark.parametrize("iterator", ITERATORS)
@pytest.mark.parametrize("clip", [1.0, 0.01])
def test_one_train_step_same_update(route, book_data, iterator, clip):
    impl = fast_implementation(torch.device("cpu"))
    book, net = twin_models(impl, len(book_data[1]))
    first, (X, Y) = two_batches(book_data, iterator)
    state = initial_state("carried", book, first)
    before = [p.detach().clone() for p in book.parameters()]
    l_book, norm_book, (H_book,) = BOOK.train_step(book, X, Y, state, 1.0, clip)
    l_fast, norm_fast, (H_fast,) = impl.train_step(net, X, Y, state, 1.0, clip)
    assert not l_fast.requires_grad and not norm_fast.requires_grad
    assert_close(l_fast, l_book, what="summed loss")
    assert_close(norm_fast, norm_book, what="gradient norm")
    assert_close(H_fast, H_book, what="state")
    # clip 1.0 leaves the first gradients alone, 0.01 scales them down
    assert (float(norm_book) > clip) == (clip == 0.01)
    for p0, p_book, p_fast in zip(before, book.parameters(), net.parameters()):
        assert_same_update(p_fast, p_book, p0)


def test_non_finite_step_is_skipped(route, book_data):
    impl = fast_implementation(torch.device("cpu"))
    book, net = twin_models(impl, len(book_data[1]))
    _, (X, Y) = two_batches(book_data, "sequential")
    for model, train_step in ((book, BOOK.train_step), (net, impl.train_step)):
        with torch.no_grad():
            model.parameters()[4][0] = math.nan  # b_q: every logit row, so every gradient
        before = [p.detach().clone() for p in model.parameters()]
        _, norm, _ = train_step(model, X, Y, model.begin_state(BATCH_SIZE), 1.0, 1.0)
        assert not torch.isfinite(norm)
        for p0, p in zip(before, model.parameters()):
            torch.testing.assert_close(p.detach(), p0, rtol=0, atol=0, equal_nan=True)


def test_generation_path(route, book_data):
    """Batch size 1 without autograd, as generation runs it: the book's outputs and states."""
    _, vocab = book_data
    book, net = twin_models(fast_implementation(torch.device("cpu")), len(vocab))
    X = torch.tensor([vocab[list("time traveller")]])
    with torch.no_grad():
        (y_book, (H_book,)), (y_fast, (H_fast,)) = (m(X, m.begin_state(1)) for m in (book, net))
    assert_close(y_fast, y_book, what="outputs")
    assert_close(H_fast, H_book, what="state")
    assert (predict("time traveller", 20, net, vocab, "cpu").text
            == predict("time traveller", 20, book, vocab, "cpu").text)


# ---- a whole run ------------------------------------------------------------------------------

def perplexities(corpus, impl: str) -> tuple[float, ...]:
    config = TrainConfig(impl=impl, epochs=4, device="cpu", threads=2)
    snap = Trainer(config, corpus=corpus).run()
    assert snap.state.value == "finished" and snap.epoch == 4
    return snap.history


@pytest.fixture(scope="module")
def book_perplexities(timemachine_corpus):
    return perplexities(timemachine_corpus, "book")


def test_four_epochs_same_perplexity(route, timemachine_corpus, book_perplexities):
    # Beyond about 4 epochs the two drift apart as any two runs whose parameters differ by
    # 1e-7 do (lr 1 is chaotic): see docs/performance.md, "Equality".
    got = perplexities(timemachine_corpus, "fast")
    want = book_perplexities
    assert len(got) == len(want) == 4
    for epoch, (g, w) in enumerate(zip(got, want), 1):
        assert abs(g - w) <= REL * w, f"epoch {epoch}: fast {g!r}, book {w!r}"


# ---- on a GPU ---------------------------------------------------------------------------------

CUDA_ROUTES = ("rnn_tanh", "fallback")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("cuda_route", CUDA_ROUTES)
@pytest.mark.parametrize("state_kind", ["zero", "carried"])
def test_cuda_same_numbers_as_book(book_data, cuda_route, state_kind, monkeypatch):
    monkeypatch.setenv(fast.ROUTE_ENV, cuda_route)
    device = torch.device("cuda")
    impl = fast_implementation(device)
    assert fast.choose_route(device).name == cuda_route and "unusable" not in impl.detail
    book, net = twin_models(impl, len(book_data[1]), device)
    first, (X, Y) = [(X.to(device), Y.to(device)) for X, Y in two_batches(book_data, "sequential")]
    state = initial_state(state_kind, book, first)
    l_book, H_book, g_book = loss_and_grads(book, X, Y, state)
    l_fast, H_fast, g_fast = loss_and_grads(net, X, Y, state)
    assert_close(l_fast, l_book, what="loss")
    assert_close(H_fast, H_book, what="final state")
    for name, got, want in zip(["W_xh", "W_hh", "b_h", "W_hq", "b_q"], g_fast, g_book):
        assert_close(got, want, what=f"gradient of {name}")
    before = [p.detach().clone() for p in book.parameters()]
    BOOK.train_step(book, X, Y, state, 1.0, 0.01)
    impl.train_step(net, X, Y, state, 1.0, 0.01)
    for p0, p_book, p_fast in zip(before, book.parameters(), net.parameters()):
        assert_same_update(p_fast, p_book, p0)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("cuda_route", CUDA_ROUTES)
def test_cuda_epoch_without_host_sync(book_data, cuda_route, monkeypatch):
    monkeypatch.setenv(fast.ROUTE_ENV, cuda_route)
    device = torch.device("cuda")
    tokens, vocab = book_data
    impl = fast_implementation(device)
    net = impl.make_model(len(vocab), NUM_HIDDENS, device, generator=torch.Generator().manual_seed(0))
    batches = [(X.to(device), Y.to(device))
               for X, Y in seq_data_iter_sequential(tokens, BATCH_SIZE, NUM_STEPS, random.Random(0))]
    state = net.begin_state(BATCH_SIZE, device)
    loss_sum = torch.zeros((), device=device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for X, Y in batches:
                state = tuple(s.detach() for s in state)
                batch_loss, _, state = impl.train_step(net, X, Y, state, 1.0, 1.0)
                loss_sum += batch_loss
    finally:
        torch.cuda.set_sync_debug_mode("default")
    # e.g. cuDNN's "weights are not part of single contiguous chunk of memory"
    assert [str(w.message) for w in caught] == []
    mean_loss = float(loss_sum) / (len(batches) * BATCH_SIZE * NUM_STEPS)
    assert math.isfinite(mean_loss) and mean_loss < math.log(len(vocab)) + 0.1


@pytest.mark.gpu
@needs_cuda
def test_cuda_batches_reach_the_device_without_a_host_sync(book_data):
    """The Trainer's copy of each batch: from pageable memory CUDA would wait for the GPU."""
    X, _ = two_batches(book_data, "sequential")[0]
    device = torch.device("cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        on_device = to_device(X, device)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.equal(on_device.cpu(), X)
