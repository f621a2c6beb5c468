"""Sequences -> padded tensors: training examples (windows over each user's training items) and
evaluation inputs (leave-one-out). Batches are built by vectorised gathers from the flat item array."""

from __future__ import annotations

import numpy as np
import torch

from harness.data.augment import PairSampler, kl_divergence
from harness.data.prepare import Dataset, positions


class TrainExamples:
    """Windows over training parts [starts, stops) of a flat item array (for a dataset: every user's sequence but
    its last two items, `Dataset.training_parts`; synthetic walks may add parts, `harness.data.walks`).

    An example is the flat index `last` of its last target; its inputs are the `context` items before `last`
    within the same part (left-padded with 0). supervision='all': windows tile each part from its end, every
    position is a target, so an epoch has one target per training transition. supervision='last': one example
    per target position, only the final position supervised (every prefix is an example, as in RecBole/SRT).
    `augment` (the config's augment.* values) replaces the windows by pairs drawn afresh each epoch
    (`harness.data.augment`), one supervised target each."""

    def __init__(
        self,
        flat: np.ndarray,
        starts: np.ndarray,
        stops: np.ndarray,
        n_items: int,
        context: int,
        supervision: str,
        augment: dict | None = None,
    ):
        self.flat = torch.from_numpy(np.array(flat, dtype=np.int64))
        self.context, self.supervision = context, supervision
        firsts, lasts = [], []
        self.item_counts = np.bincount(flat[positions(starts, stops)[0]], minlength=n_items + 1)  # popularity
        for a, b in zip(starts, stops):
            if b - a < 2:
                continue
            ends = np.arange(b - 1, a, -1 if supervision == "last" else -context)
            lasts.append(ends)
            firsts.append(np.full(len(ends), a))
        self.first = torch.from_numpy(np.concatenate(firsts))
        self.last = torch.from_numpy(np.concatenate(lasts))
        self.targets_per_epoch = int(sum(max(b - a - 1, 0) for a, b in zip(starts, stops)))
        self.starts, self.lengths, self.pairs = starts, stops - starts, None
        if augment is not None and augment["strategy"] != "none":
            self.pairs = PairSampler(
                starts, self.lengths, augment["strategy"], augment["alpha"], augment["beta"], augment["gamma"]
            )

    def target_kl(self, valid_targets: np.ndarray, n_items: int) -> float:
        """KL(validation targets || training targets) in nats (the GenPAS alignment diagnostic); the windows of
        loss.supervision make every training transition a target once per epoch, the Multi-Target distribution."""
        sampler = self.pairs or PairSampler(self.starts, self.lengths, "mt")
        p_valid = np.bincount(valid_targets, minlength=n_items + 1) / len(valid_targets)
        return kl_divergence(p_valid, sampler.target_distribution(self.flat.numpy(), n_items))

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        """The example indices of epoch `epoch`, shuffled from (seed, epoch), so a resumed run sees the same ones.
        With augmentation the epoch's examples are first drawn afresh: targets_per_epoch pairs."""
        if self.pairs is not None:
            first, last = self.pairs.sample(self.targets_per_epoch, np.random.default_rng([seed, epoch, 7]))
            self.first, self.last = torch.from_numpy(first), torch.from_numpy(last)
        return torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(len(self.last)))

    def __len__(self) -> int:
        return len(self.last)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), both (len(index), context) item ids; 0 = padding / not a target."""
        pos = self.last[index, None] - self.context + torch.arange(self.context)
        valid = pos >= self.first[index, None]
        inputs = torch.where(valid, self.flat[pos.clamp(min=0)], 0)
        targets = torch.where(valid, self.flat[(pos + 1).clamp(min=0)], 0)
        if self.supervision == "last":
            targets[:, :-1] = 0
        return inputs, targets


def eval_inputs(
    dataset: Dataset, split: str, context: int, users: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """Leave-one-out inputs for `split` ('valid': predict the second-to-last item from the ones before it;
    'test': predict the last). Returns inputs (U, context) left-padded, targets (U,), and each user's full
    history before the target (for excluding seen items)."""
    cut = 2 if split == "valid" else 1
    starts, stops = dataset.offsets[:-1], dataset.offsets[1:] - cut  # history [start, stop), target at stop
    if users is not None:
        starts, stops = starts[users], stops[users]
    pos = stops[:, None] - context + np.arange(context)
    valid = pos >= starts[:, None]
    inputs = np.where(valid, dataset.flat[np.clip(pos, 0, None)], 0)
    history = [dataset.flat[a:b] for a, b in zip(starts, stops)]
    return torch.from_numpy(inputs), torch.from_numpy(dataset.flat[stops]), history
