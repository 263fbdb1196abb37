"""Fork a run: a new run with some settings changed, from epoch 0 or from the current weights.

From epoch 0 with the same seed is a controlled comparison: the same initial parameters and
batches, one setting different. From the current weights is a branch: it carries on from the
parent's checkpoint (its parameters, epoch, history and random states) with the new settings.
A branch keeps what the weights and the held-out split depend on.
"""

from __future__ import annotations

from dataclasses import replace

from .checkpoint import Checkpoint
from .config import LIVE_FIELDS, ConfigError, TrainConfig

# The weights' shape and vocabulary, and the held-out split whose history the branch continues.
BRANCH_FIXED = ("num_hiddens", "corpus", "preprocess", "max_tokens", "val_fraction")


def branch_checkpoint(parent: Checkpoint, config: TrainConfig) -> Checkpoint:
    """The parent's checkpoint with `config` as its settings, to resume as a new run.
    Raises ConfigError when a setting the weights depend on changes, or when the branch
    would have no epoch left to train."""
    old = parent.train_config()
    changed = [k for k in BRANCH_FIXED if getattr(config, k) != getattr(old, k)]
    if changed:
        raise ConfigError(f"{', '.join(changed)} cannot change in a branch from the current "
                          "weights; fork from epoch 0 instead")
    if config.epochs <= parent.epoch:
        raise ConfigError(f"epochs must be above {parent.epoch}, the epoch the branch starts "
                          "from")
    return replace(parent, config=config.to_dict(),
                   live={name: getattr(config, name) for name in LIVE_FIELDS})
