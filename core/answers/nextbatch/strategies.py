"""Which unlabelled images to label next: five strategies over frozen-backbone features and the
current head's probabilities, each a small function, deterministic for a seed.

- ``random``: the baseline every other strategy must beat (Lüth et al., NeurIPS 2023: active
  learning often loses to a well-tuned random draw).
- ``uncertainty``: the smallest margin between the head's two most likely classes; entropy
  breaks ties. Margin rather than least confidence: it names the two classes a labeller must
  tell apart, and it is as strong as entropy on linear heads over foundation-model features
  (Gupte et al., TMLR 2024).
- ``diversity``: greedy k-center over the features, starting from the labelled set, so a batch
  covers the pool instead of being 50 copies of one hard case (a near-duplicate is at distance
  0 from its twin once the twin is picked, so it is never picked next).
- ``typical``: TypiClust (Hacohen et al., ICML 2022): k-means into as many clusters as labelled
  images plus the batch, then the most typical image (highest k-nearest-neighbour density) of
  the clusters with the fewest labelled images: the cold start, where uncertainty fails.
- ``hybrid`` (the default): ``typical`` while the labelled set is tiny (fewer than
  :data:`TYPICAL_BELOW_PER_CLASS` per class), then uncertainty inside diverse clusters
  (Zhdanov 2019, "Diverse mini-batch active learning": the ``BETA`` x batch most uncertain
  images, k-means into the batch's size, the most uncertain of each cluster), the batch shared
  between the classes the head suggests by the budget's per-class allocation.

Distances are between L2-normalised features: backbone features differ in scale from image to
image (contrast, size of the object), and their direction is what a nearest neighbour means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.base.errors import UserError, check_choice

STRATEGIES: tuple[str, ...] = ("random", "uncertainty", "diversity", "typical", "hybrid")
DEFAULT = "hybrid"
# Each strategy as a room hears it: the pages name a strategy by these words beside its name.
STRATEGY_WORDS: dict[str, str] = {
    "random": "picked at random (the baseline to beat)",
    "uncertainty": "the images the model is least sure about",
    "diversity": "images unlike any already labelled",
    "typical": "the most typical image of each group of look-alikes",
    "hybrid": "typical images while labels are few, then unsure ones from different groups",
}


def strategy_named(name: str) -> str:
    """A strategy by its name and what it picks: "uncertainty: the images the model is least sure about"."""
    return f"{name}: {STRATEGY_WORDS[name]}"


# Below this many labelled images per class the head's probabilities are too unreliable to
# rank by (TypiClust's low-budget regime is about 1 to 3 labels per class on CIFAR-10; at 3 per
# class a linear head on frozen features already beats chance by far), so hybrid picks typical
# images; from there on, uncertain ones.
TYPICAL_BELOW_PER_CLASS = 3
NEIGHBOURS = 20  # TypiClust's k for the density (typicality) of an image
MAX_CLUSTERS = 500  # TypiClust's cap on k-means clusters: beyond it clustering costs more than it tells
# A margin from which "uncertain" would mislead a labeller: 75% against 25% is a doubt, 80% against
# 10% is not.
UNCERTAIN_BELOW = 0.6
BETA = 10  # hybrid pre-filters this many times the batch by uncertainty before clustering (Zhdanov 2019)


@dataclass(frozen=True)
class Candidates:
    """The pool to choose from, what is labelled already, and the current head's view of the pool."""

    features: np.ndarray  # (n, d) pool image features from the frozen backbone
    probs: np.ndarray | None  # (n, k) the current head's probabilities; None before any head (cold start)
    labelled: np.ndarray  # (m, d) features of the images already labelled (m may be 0)
    classes: tuple[str, ...]
    class_weights: np.ndarray | None = None  # (k,) share of the batch per class; None: even


@dataclass(frozen=True)
class Pick:
    """One image to label, with why it was chosen in plain words."""

    index: int  # row in Candidates.features
    score: float  # the strategy's score (picked earlier = higher)
    reason: str
    suggested: int | None = None  # the class the head suggests (argmax of probs), None without a head
    p_suggested: float | None = None

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "score": self.score,
            "reason": self.reason,
            "suggested": self.suggested,
            "p_suggested": self.p_suggested,
        }


# A strategy's raw choice: pool rows in pick order, each with its score and reason.
Ranked = list[tuple[int, float, str]]


def select(strategy: str, candidates: Candidates, size: int, seed: int) -> list[Pick]:
    """Ranked picks, deterministic for a seed. Raises core.base.errors.UserError on an unknown
    strategy (naming the choices), size < 1, or size larger than the pool."""
    check_choice("strategy", strategy, STRATEGIES)
    n = len(candidates.features)
    if size < 1:
        raise UserError(f"the batch size must be at least 1, not {size}")
    if size > n:
        raise UserError(f"a batch of {size} is larger than the pool of {n} unlabelled images")
    ranked = _STRATEGY[strategy](candidates, size, np.random.default_rng(seed))
    return [_pick(candidates.probs, index, score, reason) for index, score, reason in ranked]


def _pick(probs: np.ndarray | None, index: int, score: float, reason: str) -> Pick:
    if probs is None:
        return Pick(int(index), float(score), reason)
    suggested = int(np.argmax(probs[index]))
    return Pick(int(index), float(score), reason, suggested, float(probs[index, suggested]))


def margin(probs: np.ndarray) -> np.ndarray:
    """The most likely class's probability minus the second's: 0 on the decision boundary."""
    top = np.sort(probs, axis=1)
    return top[:, -1] - top[:, -2]


def entropy(probs: np.ndarray) -> np.ndarray:
    """The Shannon entropy of each row, in nats: highest when every class is as likely."""
    return -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)


def unit(features: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _random(candidates: Candidates, size: int, rng: np.random.Generator) -> Ranked:
    order = rng.permutation(len(candidates.features))[:size]
    return [(int(i), 1.0 - rank / size, "drawn at random") for rank, i in enumerate(order)]


def _uncertainty(candidates: Candidates, size: int, rng: np.random.Generator) -> Ranked:
    """Smallest margin first, higher entropy first among equal margins; without a head there is
    nothing to be uncertain about, so the batch covers the pool (diversity) instead."""
    probs = candidates.probs
    if probs is None:
        return _diversity(candidates, size, rng)
    gaps = margin(probs)
    order = np.lexsort((-entropy(probs), gaps))[:size]
    return [(int(i), 1.0 - float(gaps[i]), _uncertain_reason(probs[i], candidates.classes)) for i in order]


def _uncertain_reason(row: np.ndarray, classes: tuple[str, ...]) -> str:
    """Why an image was picked for the head's doubt; an image the head is sure of (its two
    likeliest classes more than :data:`UNCERTAIN_BELOW` apart) is not called uncertain: it was
    the least sure of its group, which is what the words say."""
    first, second = np.argsort(row)[::-1][:2]
    if row[first] - row[second] >= UNCERTAIN_BELOW:
        return f"the least sure of its group, though the head says {classes[first]} at {row[first]:.0%}"
    return (
        f"uncertain between {classes[first]} and {classes[second]} "
        f"({row[first]:.0%} against {row[second]:.0%})"
    )


def _diversity(candidates: Candidates, size: int, rng: np.random.Generator) -> Ranked:
    """Greedy k-center: each pick is the pool image farthest from everything labelled or picked.
    With nothing labelled, the first pick is drawn with the seed."""
    pool = unit(candidates.features)
    if len(candidates.labelled):
        nearest = _nearest_distance(pool, unit(candidates.labelled))
    else:
        nearest = np.full(len(pool), np.inf)
    squares = np.einsum("ij,ij->i", pool, pool)  # |a|^2: distances by one product per pick
    ranked: Ranked = []
    for _ in range(size):
        if np.isinf(nearest).all():  # nothing labelled: every image is as far, the seed chooses
            index, distance = int(rng.integers(len(pool))), 2.0  # the largest distance of unit rows
            reason = "a first image to spread the batch from, drawn at random"
        else:
            index = int(np.argmax(nearest))
            distance = float(nearest[index])
            reason = f"far from everything labelled so far (distance {distance:.2f})"
        ranked.append((index, distance, reason))
        squared = squares + squares[index] - 2 * pool @ pool[index]  # |a - b|^2
        nearest = np.minimum(nearest, np.sqrt(np.maximum(squared, 0.0)))
    return ranked


def _nearest_distance(points: np.ndarray, others: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Each point's distance to its nearest neighbour among ``others``, in chunks of points to
    bound memory."""
    out = np.empty(len(points))
    squared = (others**2).sum(axis=1)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        d2 = (block**2).sum(axis=1)[:, None] + squared[None, :] - 2 * block @ others.T
        out[start : start + chunk] = np.sqrt(np.clip(d2.min(axis=1), 0, None))
    return out


def typicality(points: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """TypiClust's typicality: the inverse of the mean distance to an image's ``neighbours``
    nearest other images (high in dense regions)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(neighbours, len(points) - 1)
    if k < 1:
        return np.ones(len(points))
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return 1.0 / np.maximum(distances[:, 1:].mean(axis=1), 1e-12)


def _clusters(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """k-means cluster of every point (``count`` clusters, at most one per point)."""
    from sklearn.cluster import KMeans

    count = max(1, min(count, len(points)))
    seed = int(rng.integers(2**31 - 1))
    return KMeans(n_clusters=count, n_init=1, random_state=seed).fit_predict(points)


def _typical(candidates: Candidates, size: int, rng: np.random.Generator) -> Ranked:
    """TypiClust: cluster pool and labelled images together, then take, one at a time, the most
    typical unpicked image of the cluster with the fewest labelled or picked images (the larger
    cluster first among equals). Its score is its typicality shared by how covered its cluster
    already was, so the ranking puts uncovered clusters first."""
    pool, labelled = unit(candidates.features), unit(candidates.labelled)
    every = np.concatenate([pool, labelled]) if len(labelled) else pool
    cluster = _clusters(every, min(len(labelled) + size, MAX_CLUSTERS), rng)
    density = typicality(every)[: len(pool)]
    of_pool, counts = cluster[: len(pool)], np.bincount(cluster, minlength=cluster.max() + 1)
    covered = np.bincount(cluster[len(pool) :], minlength=len(counts))
    taken = np.zeros(len(pool), dtype=bool)
    ranked: Ranked = []
    for _ in range(size):
        open_clusters = np.unique(of_pool[~taken])
        best = open_clusters[np.lexsort((-counts[open_clusters], covered[open_clusters]))[0]]
        members = np.flatnonzero((of_pool == best) & ~taken)
        index = int(members[np.argmax(density[members])])
        reason = _typical_reason(int(counts[best]), int(covered[best]))
        ranked.append((index, float(density[index]) / (1 + covered[best]), reason))
        taken[index], covered[best] = True, covered[best] + 1
    return sorted(ranked, key=lambda item: -item[1])


def _typical_reason(size: int, covered: int) -> str:
    if covered == 0:
        return f"typical of an unlabelled cluster of {size} images"
    return f"typical of a cluster of {size} images, {covered} of them labelled or picked"


def _hybrid(candidates: Candidates, size: int, rng: np.random.Generator) -> Ranked:
    """Typical while the labelled set is tiny or there is no head; then, per suggested class by
    its share of the batch, the most uncertain image of each of as many diverse clusters."""
    k = len(candidates.classes)
    if candidates.probs is None or len(candidates.labelled) < TYPICAL_BELOW_PER_CLASS * k:
        return _typical(candidates, size, rng)
    probs = candidates.probs
    suggested = probs.argmax(axis=1)
    quotas = class_quotas(size, candidates.class_weights, np.bincount(suggested, minlength=k))
    gaps, ranked = margin(probs), []
    for label, quota in enumerate(quotas):
        members = np.flatnonzero(suggested == label)
        for index in _diverse_uncertain(unit(candidates.features[members]), gaps[members], quota, rng):
            row = int(members[index])
            reason = _uncertain_reason(probs[row], candidates.classes)
            ranked.append((row, 1.0 - float(gaps[row]), reason))
    return sorted(ranked, key=lambda item: -item[1])


def _diverse_uncertain(
    points: np.ndarray, gaps: np.ndarray, quota: int, rng: np.random.Generator
) -> list[int]:
    """The most uncertain point of each of ``quota`` k-means clusters of the ``BETA * quota``
    most uncertain points."""
    if quota == 0:
        return []
    shortlist = np.argsort(gaps, kind="stable")[: BETA * quota]
    cluster = _clusters(points[shortlist], quota, rng)
    chosen = [shortlist[cluster == c][np.argmin(gaps[shortlist[cluster == c]])] for c in np.unique(cluster)]
    return [int(i) for i in chosen]


def class_quotas(size: int, weights: np.ndarray | None, available: np.ndarray) -> np.ndarray:
    """``size`` shared between classes by ``weights`` (even when None), largest remainders first,
    no class given more than its ``available`` images (the rest goes to the classes with room).

    When the batch has room for one image of every class with images, each gets at least one:
    the weights come from noisy per-class curves, and a class given none would never show the
    head's mistakes on it (a batch of 8 once went wholly to one class of 4).

    Raises:
        ValueError: fewer images available in all than ``size`` (the caller checked the pool).
    """
    if available.sum() < size:
        raise ValueError(f"{available.sum()} images for a batch of {size}")
    weights = np.ones(len(available)) if weights is None else np.asarray(weights, dtype=np.float64)
    weights = np.where(available > 0, np.clip(weights, 0, None), 0.0)
    weights = weights / weights.sum() if weights.sum() > 0 else (available > 0) / (available > 0).sum()
    floor = (available > 0).astype(int) if size >= (available > 0).sum() else np.zeros(len(available), int)
    ideal = floor + weights * (size - floor.sum())
    quotas = np.minimum(np.floor(ideal).astype(int), available)
    while quotas.sum() < size:
        room = quotas < available
        remainder = np.where(room, ideal - quotas, -np.inf)  # classes with room, largest shortfall first
        quotas[int(np.argmax(remainder))] += 1
    return quotas


_STRATEGY: dict[str, Callable[[Candidates, int, np.random.Generator], Ranked]] = {
    "random": _random,
    "uncertainty": _uncertainty,
    "diversity": _diversity,
    "typical": _typical,
    "hybrid": _hybrid,
}
