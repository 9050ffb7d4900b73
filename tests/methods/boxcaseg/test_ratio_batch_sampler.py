import itertools
from collections import Counter

import pytest
from torch.utils.data import DataLoader, Sampler

from wsis.methods.boxcaseg.sampler import RatioBatchSampler

BOX = list(range(100))  # box-sample dataset indices
SAL = list(range(100, 114))  # 14 salient-sample indices


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_every_batch_has_9_box_and_7_salient_samples():
    s = RatioBatchSampler(BOX, SAL)
    assert isinstance(s, Sampler) and (s.num_box, s.num_salient) == (9, 7)
    for batch in _take(s, 50):
        assert len(batch) == 16
        assert all(i in BOX for i in batch[:9]) and all(i in SAL for i in batch[9:])


def test_each_salient_epoch_uses_every_salient_index_once():
    batches = _take(RatioBatchSampler(BOX, SAL, seed=3), 20)  # 20 batches × 7 = 10 salient epochs of 14
    salient = [i for b in batches for i in b[9:]]
    for e in range(10):
        assert sorted(salient[14 * e:14 * (e + 1)]) == SAL
    assert salient[:14] != salient[14:28]  # reshuffled each epoch
    box = [i for b in batches for i in b[:9]]  # 180 draws over 100 box indices: one full epoch, then a new one
    assert sorted(box[:100]) == BOX and len(set(box[100:])) == 80


def test_determinism_with_the_seed():
    assert _take(RatioBatchSampler(BOX, SAL, seed=1), 10) == _take(RatioBatchSampler(BOX, SAL, seed=1), 10)
    assert _take(RatioBatchSampler(BOX, SAL, seed=1), 10) != _take(RatioBatchSampler(BOX, SAL, seed=2), 10)
    s = RatioBatchSampler(BOX, SAL, seed=1)
    assert _take(s, 5) == _take(s, 5)  # every iteration restarts the same stream


def test_ranks_get_disjoint_streams_that_cover_the_salient_epoch():
    world = [RatioBatchSampler(BOX, SAL, batch_size=16, seed=4, rank=r, world_size=2) for r in range(2)]
    first = [_take(s, 1)[0] for s in world]
    assert not set(first[0]) & set(first[1])
    assert sorted(first[0][9:] + first[1][9:]) == SAL  # 2 ranks × 7 = one salient epoch
    single = _take(RatioBatchSampler(BOX, SAL, batch_size=16, seed=4), 2)
    stream = [i for b in single for i in b[9:]]
    assert first[0][9:] == stream[0::2][:7] and first[1][9:] == stream[1::2][:7]


def test_other_ratios_and_one_sided_batches():
    s = RatioBatchSampler(BOX, SAL, batch_size=8, ratio=(1, 1))
    assert (s.num_box, s.num_salient) == (4, 4)
    only_salient = RatioBatchSampler([], SAL, batch_size=7, ratio=(0, 1))
    b0, b1 = _take(only_salient, 2)
    assert len(b0) == len(b1) == 7 and sorted(b0 + b1) == SAL
    only_box = RatioBatchSampler(BOX, [], batch_size=5, ratio=(1, 0))
    assert all(len(b) == 5 and set(b) <= set(BOX) for b in _take(only_box, 4))


def test_works_as_a_dataloader_batch_sampler():
    data = list(range(114))
    loader = DataLoader(data, batch_sampler=RatioBatchSampler(BOX, SAL, batch_size=16), num_workers=0)
    batch = next(iter(loader))
    assert batch.shape == (16,) and Counter(int(i) >= 100 for i in batch) == {False: 9, True: 7}


@pytest.mark.parametrize("kwargs,msg", [
    (dict(batch_size=10), "16"),  # 10·9/16 is not an integer
    (dict(batch_size=0), "batch_size"),
    (dict(ratio=(-1, 2)), "ratio"),
    (dict(ratio=(0, 0)), "ratio"),
    (dict(ratio=(1.5, 2)), "ratio"),
    (dict(rank=2, world_size=2), "rank"),
])
def test_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        RatioBatchSampler(BOX, SAL, **kwargs)


def test_empty_source_with_a_share_is_an_error():
    with pytest.raises(ValueError, match="salient_indices"):
        RatioBatchSampler(BOX, [])
    with pytest.raises(ValueError, match="box_indices"):
        RatioBatchSampler([], SAL)
    with pytest.raises(ValueError):
        RatioBatchSampler([0.5, 1.0], SAL)
