"""The order in which a run sees its training examples, epoch by epoch.

Both samplers are seeded by (``train.seed``, epoch): a resumed run rebuilds the same order
and skips the batches it already trained on (``pst_bench.run.loop.TrainingLoop._epoch_loader``).

``LengthGroupedPermutation`` is ``train.group_by_length=true``: under dynamic padding a batch
costs its longest sequence times its size, and GLUE sentences vary a lot in length (SST-2's
mean is 13 tokens, its longest 60), so random batches of 32 carry 1.5-3x their real tokens.
As in transformers' ``group_by_length``, a fresh random permutation is cut into mega-batches
of ``MEGABATCH_BATCHES`` batches, each mega-batch is sorted by length (longest first), and
batches are consecutive slices: batches stay random in which examples they mix, but an
example's neighbours have a similar length, so little is padded.

Unlike transformers, the batches are then shuffled. A mega-batch of 50 batches is most of a
2,000-example subset, so transformers' order walks each epoch from the longest batch to the
shortest; where length goes with the label (STS-B's genres: short headlines and captions,
long forum posts) the label mix drifts through the epoch, and PST at 3e-4 on STS-B at 70%
did not learn on that order (Pearson x100 under 16 for 10 epochs) while it did on random
batches. Shuffling keeps the same batches, so the padding saved is unchanged.
The longest batch of the epoch goes first, so that an out-of-memory shows at the first step, not the last.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Sampler

#: transformers' ``get_length_grouped_indices`` uses mega-batches of 50 batches
MEGABATCH_BATCHES = 50


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + epoch)


class EpochPermutation(Sampler):
    """A fresh, seeded permutation per epoch, so a resumed run sees the same order."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(torch.randperm(self.size, generator=_epoch_generator(self.seed, self.epoch)).tolist())

    def __len__(self) -> int:
        return self.size


class LengthGroupedPermutation(EpochPermutation):
    """A seeded permutation per epoch whose batches group examples of similar length (see the module)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, megabatch_batches: int = MEGABATCH_BATCHES):
        if batch_size < 1 or megabatch_batches < 1:
            raise ValueError(f"batch_size ({batch_size}) and megabatch_batches ({megabatch_batches}) must be >= 1")
        super().__init__(len(lengths), seed)
        self.lengths = [int(n) for n in lengths]
        self.batch_size = int(batch_size)
        self.megabatch = int(batch_size) * int(megabatch_batches)

    def __iter__(self):
        generator = _epoch_generator(self.seed, self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        lengths = self.lengths
        megabatches = [
            sorted(order[start : start + self.megabatch], key=lambda i: -lengths[i])
            for start in range(0, self.size, self.megabatch)
        ]
        indices = [i for mega in megabatches for i in mega]
        batches = [indices[start : start + self.batch_size] for start in range(0, self.size, self.batch_size)]
        # the same batches in a random order (see the module), the epoch's generator's next draw. A short last
        # batch stays last: the DataLoader cuts this order into batch_size slices again, and a short batch
        # inside it would shift every later slice across two length groups.
        full = len(batches) if self.size % self.batch_size == 0 else len(batches) - 1
        shuffle = torch.randperm(full, generator=generator).tolist()
        batches = [batches[b] for b in shuffle] + batches[full:]
        longest = max(range(full), key=lambda b: lengths[batches[b][0]]) if full else 0
        if longest:
            batches[0], batches[longest] = batches[longest], batches[0]
        return iter([i for batch in batches for i in batch])


def padded_tokens(lengths: Sequence[int], order: Sequence[int], batch_size: int) -> int:
    """Tokens that batches of ``batch_size`` in ``order`` carry under dynamic padding (longest x size)."""
    total = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        total += max(batch) * len(batch)
    return total


def eval_order(lengths: Sequence[int]) -> list[int]:
    """Evaluation examples longest first: batches of similar length pad little. The metric is the same
    in any order (predictions and labels travel together), so every run evaluates this way."""
    return sorted(range(len(lengths)), key=lambda i: -int(lengths[i]))
