"""The next-batch strategies on constructed features where the right pick is known: a cluster
never sampled, a point on the decision boundary, a duplicate. No training: fast."""

from __future__ import annotations

import numpy as np
import pytest

from core.answers.nextbatch.strategies import (
    DEFAULT,
    STRATEGIES,
    Candidates,
    class_quotas,
    select,
)
from core.base.errors import UserError

CLASSES = ("Shirt", "T-shirt", "Coat")


def clusters(sizes: tuple[int, ...], seed: int = 0, dims: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Points around ``len(sizes)`` far-apart directions, and each point's cluster."""
    generator = np.random.default_rng(seed)
    which = np.repeat(np.arange(len(sizes)), sizes)
    centres = np.eye(dims)[: len(sizes)] * 10 + 1
    return centres[which] + generator.normal(scale=0.3, size=(len(which), dims)), which


def probs_from(which: np.ndarray, k: int = 3, sure: float = 0.9) -> np.ndarray:
    """A confident head: ``sure`` on each point's own cluster, the rest shared."""
    probs = np.full((len(which), k), (1 - sure) / (k - 1))
    probs[np.arange(len(which)), which] = sure
    return probs


@pytest.fixture
def pool() -> tuple[np.ndarray, np.ndarray]:
    return clusters((30, 30, 30))


def labelled_from(features: np.ndarray, which: np.ndarray, from_clusters: tuple[int, ...], n: int = 3):
    rows = np.concatenate([np.flatnonzero(which == c)[:n] for c in from_clusters])
    return features[rows] + 0.01


@pytest.mark.parametrize("strategy", ["typical", "diversity", "hybrid"])
def test_the_first_pick_comes_from_the_cluster_never_sampled(pool, strategy):
    features, which = pool
    candidates = Candidates(features, None, labelled_from(features, which, (0, 1), n=1), CLASSES)
    first = select(strategy, candidates, 1, seed=1)[0]
    assert which[first.index] == 2


def test_typical_picks_the_densest_image_of_an_unlabelled_cluster(pool):
    features, which = pool
    features = features.copy()
    centre = features[which == 2].mean(axis=0)
    features[which == 2] = centre + (features[which == 2] - centre) * np.linspace(0.2, 3, 30)[:, None]
    candidates = Candidates(features, None, labelled_from(features, which, (0, 1), n=1), CLASSES)
    first = select("typical", candidates, 1, seed=1)[0]
    assert first.index == np.flatnonzero(which == 2)[0], "the point nearest the centre is the densest"
    assert first.reason == "typical of an unlabelled cluster of 30 images"


def test_typical_covers_every_cluster_at_the_cold_start(pool):
    features, which = pool
    picks = select("typical", Candidates(features, None, np.empty((0, 8)), CLASSES), 3, seed=2)
    assert sorted(which[[p.index for p in picks]]) == [0, 1, 2]


def test_uncertainty_picks_the_point_on_the_decision_boundary(pool):
    features, which = pool
    probs = probs_from(which)
    probs[17] = [0.41, 0.38, 0.21]
    picks = select("uncertainty", Candidates(features, probs, features[:3], CLASSES), 2, seed=0)
    assert picks[0].index == 17
    assert picks[0].reason == "uncertain between Shirt and T-shirt (41% against 38%)"
    assert (picks[0].suggested, picks[0].p_suggested) == (0, pytest.approx(0.41))
    assert picks[0].score > picks[1].score


def test_entropy_breaks_a_tie_of_margins(pool):
    features, which = pool
    probs = probs_from(which)
    probs[5] = [0.5, 0.25, 0.25]
    probs[6] = [0.625, 0.375, 0.0]  # the same margin (exact in binary), less spread
    picks = select("uncertainty", Candidates(features, probs, features[:3], CLASSES), 2, seed=0)
    assert [p.index for p in picks] == [5, 6]


def test_diversity_never_picks_a_duplicate_of_an_earlier_pick():
    features, _ = clusters((20, 20))
    far = np.full(8, -10.0)
    features = np.vstack([features, far, far])  # a duplicated outlier
    labelled = features[[0, 20]]
    picks = select("diversity", Candidates(features, None, labelled, CLASSES[:2]), 3, seed=0)
    indices = [p.index for p in picks]
    assert indices[0] in (40, 41) and not {40, 41} <= set(indices)
    assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)


def test_hybrid_takes_one_of_two_uncertain_duplicates_where_uncertainty_takes_both():
    features, which = clusters((30, 30, 30))
    probs = probs_from(which, sure=0.7)
    probs[:6] = np.linspace(0.5, 0.6, 6)[:, None] * [1, 0, 0] + [0, 0.4, 0]  # uncertain, class 0
    probs[:6, 2] = 1 - probs[:6, :2].sum(axis=1)
    features[1] = features[0]
    probs[1] = probs[0]  # a near-duplicate of the most uncertain image
    labelled = labelled_from(features, which, (0, 1, 2), n=3)
    candidates = Candidates(features, probs, labelled, CLASSES, class_weights=np.array([1.0, 0, 0]))
    assert {0, 1} <= {p.index for p in select("uncertainty", candidates, 2, seed=0)}
    hybrid = {p.index for p in select("hybrid", candidates, 2, seed=0)}
    assert len(hybrid & {0, 1}) == 1


def test_hybrid_shares_the_batch_by_the_class_weights(pool):
    features, which = pool
    probs = probs_from(which, sure=0.6)
    labelled = labelled_from(features, which, (0, 1, 2), n=3)
    candidates = Candidates(features, probs, labelled, CLASSES, class_weights=np.array([0.7, 0.2, 0.1]))
    picks = select("hybrid", candidates, 10, seed=0)
    # one image each first, then the other 7 by the weights (4.9, 1.4, 0.7; largest remainders)
    assert np.bincount([p.suggested for p in picks], minlength=3).tolist() == [6, 2, 2]


def test_hybrid_is_typical_while_the_labelled_set_is_tiny(pool):
    features, which = pool
    candidates = Candidates(features, probs_from(which), features[:2], CLASSES)
    assert select("hybrid", candidates, 4, seed=3) == select("typical", candidates, 4, seed=3)
    assert DEFAULT == "hybrid"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_is_deterministic_for_a_seed_and_picks_distinct_images(pool, strategy):
    features, which = pool
    for labelled, probs in ((np.empty((0, 8)), None), (features[::9], probs_from(which, sure=0.5))):
        candidates = Candidates(features, probs, labelled, CLASSES)
        picks = select(strategy, candidates, 12, seed=4)
        assert picks == select(strategy, candidates, 12, seed=4)
        assert len({p.index for p in picks}) == 12
        assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)
        assert all(p.reason for p in picks)


def test_random_draws_differ_between_seeds(pool):
    features, _ = pool
    candidates = Candidates(features, None, np.empty((0, 8)), CLASSES)
    assert select("random", candidates, 10, 1) != select("random", candidates, 10, 2)
    assert select("random", candidates, 1, 1)[0].reason == "drawn at random"


@pytest.mark.parametrize(
    ("strategy", "size", "message"),
    [
        ("smart", 3, "unknown strategy 'smart'; choose one of: " + ", ".join(STRATEGIES)),
        ("random", 0, "the batch size must be at least 1, not 0"),
        ("hybrid", 91, "a batch of 91 is larger than the pool of 90 unlabelled images"),
    ],
)
def test_bad_requests_are_named(pool, strategy, size, message):
    features, _ = pool
    with pytest.raises(UserError) as error:
        select(strategy, Candidates(features, None, np.empty((0, 8)), CLASSES), size, seed=0)
    assert str(error.value) == message


def test_class_quotas_give_a_full_class_s_share_to_the_others():
    assert class_quotas(10, None, np.array([100, 100])).tolist() == [5, 5]
    assert class_quotas(10, np.array([0.9, 0.1]), np.array([3, 100])).tolist() == [3, 7]
    assert class_quotas(4, None, np.array([0, 10, 10])).tolist() == [0, 2, 2]


def test_every_class_gets_an_image_when_the_batch_has_room_though_its_weight_is_nil():
    assert class_quotas(8, np.array([1.0, 0, 0, 0]), np.array([50, 50, 50, 50])).tolist() == [5, 1, 1, 1]
    assert class_quotas(3, np.array([1.0, 0, 0, 0]), np.array([50, 50, 50, 50])).tolist() == [3, 0, 0, 0]
    assert class_quotas(8, np.array([1.0, 0, 0]), np.array([50, 0, 50])).tolist() == [7, 0, 1]


def test_an_image_the_head_is_sure_of_is_not_called_uncertain():
    classes = ("Bag", "Coat", "Shirt")
    probs = np.array([[0.0, 1.0, 0.0], [0.1, 0.5, 0.4]])
    candidates = Candidates(np.eye(2, 8), probs, np.empty((0, 8)), classes)
    reasons = {pick.index: pick.reason for pick in select("uncertainty", candidates, 2, seed=0)}
    assert reasons[0] == "the least sure of its group, though the head says Coat at 100%"
    assert reasons[1] == "uncertain between Coat and Shirt (50% against 40%)"
