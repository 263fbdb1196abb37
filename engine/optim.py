"""How parameters move: the book's SGD (d2l 8.5), Adam (d2l 12.10), and learning-rate schedules.

Each optimizer has two steps with the same numbers: `book_step`, written as the book writes
it (reading `param.grad`), and `fast_step`, which takes the gradients as a list and never
reads a number back to the host, so a GPU never waits (the fast path's clipping gives it a
`scale` and an `apply` flag as tensors). Its state goes into checkpoints, so a resumed run
continues exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .train import sgd

from .config import OPTIMIZERS, SCHEDULES  # noqa: F401 - declared with the settings


class SGD:
    """Minibatch stochastic gradient descent; no state besides its settings."""
    name = "sgd"

    def __init__(self, params: list[torch.Tensor]) -> None:
        pass

    def book_step(self, params: list[torch.Tensor], lr: float) -> None:
        sgd(params, lr, batch_size=1)  # the loss is already a mean

    def fast_step(self, params, grads, lr: float, scale: torch.Tensor, apply: torch.Tensor) -> None:
        """param -= lr * scale * grad, for all parameters at once; where apply is False, nothing."""
        with torch.no_grad():
            if apply.device.type == "cpu":
                # On a CPU, reading the flags back waits for nothing (there is no queue of
                # work), and one pass over each parameter replaces three.
                if bool(apply):
                    torch._foreach_add_(params, grads, alpha=-lr * float(scale))
                return
            steps = torch._foreach_mul(grads, lr * scale)
            # where, not a multiply by 0: a non-finite gradient times 0 is still NaN.
            torch._foreach_sub_(params, [torch.where(apply, step, 0.0) for step in steps])

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class Adam:
    """Adam (d2l 12.10): momentum v and second moment s per parameter, bias-corrected.

    The book's eps is 1e-6; beta1 0.9, beta2 0.999. The step count t is a tensor so that
    a skipped step (a non-finite gradient) does not advance it on the fast path either.
    """
    name = "adam"
    beta1, beta2, eps = 0.9, 0.999, 1e-6

    def __init__(self, params: list[torch.Tensor]) -> None:
        self.states = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.t = torch.ones((), device=params[0].device) if params else torch.ones(())

    def book_step(self, params: list[torch.Tensor], lr: float) -> None:
        beta1, beta2, eps = self.beta1, self.beta2, self.eps
        t = float(self.t)
        for p, (v, s) in zip(params, self.states):
            with torch.no_grad():
                v[:] = beta1 * v + (1 - beta1) * p.grad
                s[:] = beta2 * s + (1 - beta2) * torch.square(p.grad)
                v_bias_corr = v / (1 - beta1 ** t)
                s_bias_corr = s / (1 - beta2 ** t)
                p[:] -= lr * v_bias_corr / (torch.sqrt(s_bias_corr) + eps)
            p.grad.data.zero_()
        self.t += 1

    def fast_step(self, params, grads, lr: float, scale: torch.Tensor, apply: torch.Tensor) -> None:
        beta1, beta2, eps = self.beta1, self.beta2, self.eps
        with torch.no_grad():
            t = self.t
            grads = [torch.where(apply, g * scale, 0.0) for g in grads]
            for p, g, (v, s) in zip(params, grads, self.states):
                v.copy_(torch.where(apply, beta1 * v + (1 - beta1) * g, v))
                s.copy_(torch.where(apply, beta2 * s + (1 - beta2) * g * g, s))
                step = lr * (v / (1 - beta1 ** t)) / (torch.sqrt(s / (1 - beta2 ** t)) + eps)
                p.sub_(torch.where(apply, step, 0.0))
            self.t += apply.to(self.t.dtype)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "t": self.t.detach().cpu().clone(),
                "v": [v.detach().cpu().clone() for v, _ in self.states],
                "s": [s.detach().cpu().clone() for _, s in self.states]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back saved moments; ValueError if they do not fit these parameters."""
        v, s, t = state.get("v"), state.get("s"), state.get("t")
        if not (isinstance(v, list) and isinstance(s, list) and len(v) == len(s) == len(self.states)
                and isinstance(t, torch.Tensor) and t.numel() == 1):
            raise ValueError("the saved Adam state does not fit this model")
        for (mine_v, mine_s), saved_v, saved_s in zip(self.states, v, s):
            if not (isinstance(saved_v, torch.Tensor) and isinstance(saved_s, torch.Tensor)
                    and saved_v.shape == mine_v.shape and saved_s.shape == mine_s.shape):
                raise ValueError("the saved Adam state does not fit this model")
            mine_v.copy_(saved_v)
            mine_s.copy_(saved_s)
        self.t = t.reshape(()).to(self.t.device, self.t.dtype).clone()


def make_optimizer(name: str, params: list[torch.Tensor]):
    return {"sgd": SGD, "adam": Adam}[name](params)


def scheduled_lr(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of the epoch after `epoch` completed ones: constant (none), a cosine
    from lr down to 0 at the last epoch, or step: halved at each quarter of the run."""
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / max(1, epochs)))
    if schedule == "step":
        return lr * 0.5 ** (4 * min(epoch, epochs) // max(1, epochs))
    return lr
