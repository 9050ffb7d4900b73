"""
Batch samplers (detectron2-free).

:class:`RatioBatchSampler` is BoxCaseg's sampling strategy for imbalanced sources (Wang et al., CVPR 2021, §4.2.3,
Tab. 5): every batch holds a fixed ratio r_ws of box-supervised to salient images (9 : 7 of 16), all salient images
are used each "epoch" and the box-supervised images are subsampled.
"""
import itertools

import numpy as np
from torch.utils.data import Sampler


def _index_list(indices, name):
    arr = np.asarray(list(indices))
    if arr.size and (arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D sequence of integer dataset indices")
    return [int(i) for i in arr]


def _reshuffled_stream(indices, seed, stream):
    """Endless concatenation of random permutations of ``indices`` (a new one each time it is exhausted)."""
    rng = np.random.default_rng([int(seed), stream])
    while True:
        for j in rng.permutation(len(indices)):
            yield indices[j]


class RatioBatchSampler(Sampler):
    """
    Infinite sampler of index lists (for ``DataLoader(batch_sampler=...)``): each batch is ``num_box`` box-sample
    indices followed by ``num_salient`` salient-sample indices, with ``num_box = batch_size·a / (a + b)`` for
    ``ratio = (a, b)``, which must be an integer (16·9/16 = 9 box, 7 salient by default).

    Each source is an endless stream of seeded random permutations, reshuffled when exhausted, so each "salient epoch"
    visits every salient index once, and the box stream, whatever its length, is consumed at the same rate.
    Being endless there is no last batch and no ``drop_last``.

    Distributed: every rank builds the same two streams from ``seed`` and keeps elements ``rank, rank + world_size,
    …`` of each (as detectron2's ``TrainingSampler`` does), so the ranks' batches are disjoint and, together, still
    cover each salient epoch once. ``batch_size`` is per rank.

    Args:
        box_indices, salient_indices (sequence[int]): dataset indices of each source (e.g. in a concatenated dataset).
        batch_size (int): samples per batch (per rank).
        ratio ((int, int)): (box, salient) parts, both ≥ 0, sum > 0.
        seed (int): seed of the streams; the same on every rank.
        rank (int), world_size (int): 0 ≤ rank < world_size.
    """

    def __init__(self, box_indices, salient_indices, batch_size=16, ratio=(9, 7), seed=0, rank=0, world_size=1):
        self.box_indices = _index_list(box_indices, "box_indices")
        self.salient_indices = _index_list(salient_indices, "salient_indices")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if len(ratio) != 2 or any(int(r) != r or r < 0 for r in ratio) or sum(ratio) <= 0:
            raise ValueError(f"ratio must be two non-negative integers with a positive sum, got {ratio!r}")
        a, b = int(ratio[0]), int(ratio[1])
        if (batch_size * a) % (a + b):
            raise ValueError(f"batch_size·a/(a+b) = {batch_size}·{a}/{a + b} is not an integer; choose a batch_size "
                             f"divisible by {(a + b) // np.gcd(a, a + b)} for ratio {a}:{b}")
        if not (0 <= rank < world_size):
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.batch_size = int(batch_size)
        self.num_box = self.batch_size * a // (a + b)
        self.num_salient = self.batch_size - self.num_box
        for name, idx, n in (("box_indices", self.box_indices, self.num_box),
                             ("salient_indices", self.salient_indices, self.num_salient)):
            if n > 0 and not idx:
                raise ValueError(f"{name} is empty but the ratio {a}:{b} asks for {n} per batch")
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)

    def _stream(self, indices, stream):
        return itertools.islice(_reshuffled_stream(indices, self.seed, stream), self.rank, None, self.world_size)

    def __iter__(self):
        box = self._stream(self.box_indices, 0) if self.num_box else None
        salient = self._stream(self.salient_indices, 1) if self.num_salient else None
        while True:
            batch = list(itertools.islice(box, self.num_box)) if box is not None else []
            if salient is not None:
                batch += list(itertools.islice(salient, self.num_salient))
            yield batch
