"""Learning-curve extrapolation: fits recover known curves, intervals bracket the truth, refusals say why."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.answers import curves
from core.answers.budget import Analysis, CurvePoint
from core.answers.curves import FAMILIES, Observation
from core.answers.curves.calibration import weighted_quantile
from core.answers.curves.families import evaluate
from core.answers.curves.fitting import VAR_FLOOR
from core.base.intervals import share
from core.base.paths import PROJECT_ROOT

GRID = (1, 2, 3, 5, 8, 13, 20, 30, 50, 80)
POWER = (0.92, 0.5, 0.4)  # acc = 0.92 - 0.5 n^-0.4
TRUE_PARAMS = {
    "power_law": POWER,
    "piecewise_power_law": (0.9, 0.3, 0.3, 0.5, 5.0),
    "arctan": (0.95, 0.8, 0.7),
    "algebraic_root": (0.9, 5.0, 1.0),
}
FAST = {"n_boot": 40}


def synthetic(
    family: str, params, sd: float = 0.005, runs: int = 3, seed: int = 0, grid=GRID
) -> list[Observation]:
    """``runs`` noisy runs per count of a known curve, from a fixed random generator."""
    rng = np.random.default_rng(seed)
    return [
        Observation(n, float(np.clip(FAMILIES[family].function(n, *params) + rng.normal(0, sd), 0, 1)), s, 0)
        for n in grid
        for s in range(runs)
    ]


def constant(values: dict[float, float], runs: int = 3) -> list[Observation]:
    """Runs that all measure the same accuracy at each count: the bootstrap has nothing to resample."""
    return [Observation(n, acc, s, 0) for n, acc in values.items() for s in range(runs)]


def true_power(n: float) -> float:
    a, b, c = POWER
    return a - b * n**-c


@pytest.fixture(scope="module")
def power_runs() -> list[Observation]:
    return synthetic("power_law", POWER, sd=0.01)


def test_points_average_runs_and_weight_by_the_variance_of_the_mean():
    obs = [Observation(5, 0.5, 0), Observation(5, 0.7, 1), Observation(1, 0.3, 0)]
    single, pair = curves.curve_points(obs)
    assert (pair.n, pair.mean, pair.runs) == (5, pytest.approx(0.6), 2)
    assert pair.std == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert pair.variance == pytest.approx(0.02 / 2)
    assert single.std == 0 and single.variance == pytest.approx(0.02)  # borrows the pooled spread
    with_holdout = curves.curve_points(obs, n_holdout=100)[1]
    assert with_holdout.variance == pytest.approx(0.01 + 0.6 * 0.4 / 100)
    assert curves.curve_points(constant({1: 0.5}))[0].variance == VAR_FLOOR


@pytest.mark.parametrize("family", sorted(TRUE_PARAMS))
def test_each_saturating_family_recovers_its_own_ceiling(family):
    points = curves.curve_points(synthetic(family, TRUE_PARAMS[family]))
    fit = curves.fit_all(points, {family: FAMILIES[family]})[family]
    assert fit.params[0] == pytest.approx(TRUE_PARAMS[family][0], abs=0.03)
    assert fit.rmse < 0.01


def test_logarithmic_fits_its_own_curve_and_has_no_ceiling():
    points = curves.curve_points(synthetic("logarithmic", (0.3, 0.12, 0.0)))
    fit = curves.fit_all(points)["logarithmic"]
    assert fit.rmse < 0.01 and FAMILIES["logarithmic"].ceiling is None
    assert evaluate(FAMILIES["logarithmic"], np.array(fit.params), 1e9)[0] == 1.0  # clipped


def test_images_needed_brackets_the_true_count(power_runs):
    answer = curves.images_needed(power_runs, 0.85)  # the true curve reaches 0.85 at 136 per class
    assert answer.reason is None and not answer.beyond_reach
    assert answer.estimate.low <= 136 <= answer.estimate.high
    assert answer.estimate.low <= answer.estimate.estimate <= answer.estimate.high
    assert set(answer.per_family) == set(FAMILIES)
    assert answer.ceiling.low <= answer.ceiling.estimate <= answer.ceiling.high <= 1


def test_accuracy_at_brackets_the_true_accuracy(power_runs):
    answer = curves.accuracy_at(power_runs, 200, **FAST)
    assert answer.estimate.low <= true_power(200) <= answer.estimate.high
    assert answer.estimate.low >= 0 and answer.estimate.high <= 1


def test_a_target_above_the_ceiling_is_beyond_reach(power_runs):
    answer = curves.images_needed(power_runs, 0.97, **FAST)
    assert answer.beyond_reach and answer.estimate is None
    assert "97% is above what the fitted curves reach" in answer.reason
    assert f"ceiling {answer.ceiling.estimate:.1%}" in answer.reason


def test_a_target_inside_the_ceilings_interval_is_not_called_out_of_reach(power_runs):
    ceiling = curves.images_needed(power_runs, 0.97, **FAST).ceiling
    above = (ceiling.high + 1) / 2
    assert "cannot rule it out" not in curves.images_needed(power_runs, above, **FAST).reason
    answer = curves.images_needed(power_runs, (ceiling.estimate + ceiling.high) / 2, **FAST)
    assert answer.estimate is None and answer.reason.endswith(
        "though within the ceiling's interval: these slices cannot rule it out."
    )


def test_a_target_some_curves_never_reach_has_no_upper_end(power_runs):
    ceiling = curves.images_needed(power_runs, 0.97, **FAST).ceiling.estimate
    answer = curves.images_needed(power_runs, ceiling - 0.001, **FAST)  # under the median ceiling
    assert answer.beyond_reach and answer.estimate is None
    # where the curve's own point gets there, the reason says so first: the page beside it gives
    # the accuracy the curve expects at any count
    point = float(f"{answer.per_family['power_law']:.2g}")
    assert answer.reason.startswith(
        f"The fitted curve reaches {share(ceiling - 0.001)} at about {point:,.0f} images per class, but "
        "the 80% interval has no upper end"
    )
    assert f"ceiling {ceiling:.1%}" in answer.reason
    # the search for a crossing stops at a billion images per class: not a number to tell anyone
    assert (
        "however many images per class are labelled" in answer.reason and "1,000,000,000" not in answer.reason
    )


def test_a_target_already_reached_still_gets_the_fitted_answer(power_runs):
    answer = curves.images_needed(power_runs, 0.6, **FAST)
    assert answer.reason is None and 1 <= answer.estimate.estimate <= 10
    # the interval is the band's, not stretched to the largest count measured (80 here)
    truth = 0.64**-2.5  # where 0.92 - 0.5 n^-0.4 is 0.6
    assert answer.estimate.low <= truth <= answer.estimate.high < 10


@pytest.mark.parametrize(
    ("observations", "words"),
    [
        (constant({5: 0.6}), "Only 1 distinct image count per class measured (5)"),
        (constant({1: 0.4, 5: 0.6}), "Only 2 distinct"),
        (constant({1: 0.6, 5: 0.61, 20: 0.6, 80: 0.605}), "too small a rise to fit a curve to"),
        (constant({1: 0.9, 5: 0.8, 20: 0.7, 80: 0.5}), "falls"),
        (constant({1: 0.3, 2: 0.8, 3: 0.35, 5: 0.85, 8: 0.4, 13: 0.9, 20: 0.45, 30: 0.95}), "too noisy"),
    ],
    ids=["one point", "two points", "flat", "falling", "zigzag"],
)
def test_degenerate_curves_give_a_reason_and_no_number(observations, words):
    points = curves.curve_points(observations)
    assert words in curves.check_extrapolable(points)
    for answer in (
        curves.images_needed(observations, 0.9, **FAST),
        curves.accuracy_at(observations, 100, **FAST),
    ):
        assert answer.estimate is None and not answer.beyond_reach and words in answer.reason
        json.dumps(answer.to_dict(), allow_nan=False)


def test_pure_noise_is_refused():
    for seed in range(6):
        rng = np.random.default_rng(seed)
        noise = [Observation(n, float(rng.uniform(0.3, 0.7)), s) for n in GRID for s in range(3)]
        assert curves.check_extrapolable(curves.curve_points(noise)), seed
    answer = curves.images_needed(noise, 0.8, **FAST)
    assert answer.estimate is None and answer.reason


def test_a_clean_curve_is_extrapolable(power_runs):
    assert curves.check_extrapolable(curves.curve_points(power_runs)) is None


@pytest.mark.parametrize("target", [0, 1, 1.5, -0.2])
def test_a_target_outside_zero_one_is_refused(power_runs, target):
    with pytest.raises(ValueError, match="target accuracy"):
        curves.images_needed(power_runs, target)


def test_bad_inputs_are_refused(power_runs):
    with pytest.raises(ValueError, match="images per class"):
        curves.accuracy_at(power_runs, 0)
    with pytest.raises(ValueError, match="level"):
        curves.accuracy_at(power_runs, 10, level=1.0)
    with pytest.raises(ValueError, match="accuracy in"):
        curves.curve_points([Observation(5, 1.2)])


def test_same_seed_same_answer_and_other_seeds_stay_close(power_runs):
    first = curves.images_needed(power_runs, 0.85, seed=1, **FAST)
    assert curves.images_needed(list(reversed(power_runs)), 0.85, seed=1, **FAST) == first
    other = curves.images_needed(power_runs, 0.85, seed=2, **FAST)
    assert other.estimate.estimate == first.estimate.estimate  # the point uses the original fits only
    assert other.estimate.low == pytest.approx(first.estimate.low, rel=0.1)
    assert 1 / 3 < other.estimate.high / first.estimate.high < 3  # the upper tail is the long one


def test_backtest_agrees_with_accuracy_at_and_counts_rows_inside():
    train = synthetic("power_law", POWER, grid=GRID[:8])
    band = curves.accuracy_at(train, 50, **FAST).estimate
    inside = (band.low + band.high) / 2
    held = constant({50: inside, 80: 0.2})  # 0.2 is far below every increasing curve at 80
    result = curves.backtest(train + held, fit_up_to=30, **FAST)
    assert result.reason is None and [row.n for row in result.rows] == [50, 80]
    first, last = result.rows
    assert (first.predicted, first.low, first.high) == (band.estimate, band.low, band.high)
    assert first.inside and not last.inside
    assert result.coverage == 0.5
    assert result.mean_abs_error == pytest.approx(
        (abs(first.predicted - inside) + abs(last.predicted - 0.2)) / 2
    )
    assert result.ratio_images == pytest.approx(
        curves.images_needed(train, 0.2, **FAST).estimate.estimate / 80
    )
    json.dumps(result.to_dict(), allow_nan=False)


def test_backtest_on_a_power_law_predicts_the_held_out_counts(power_runs):
    result = curves.backtest(power_runs, fit_up_to=20, **FAST)
    held_out = sorted({o.n for o in power_runs if o.n > 20})
    assert [row.n for row in result.rows] == held_out and result.mean_abs_error < 0.03
    for row in result.rows:
        assert row.measured == pytest.approx(np.mean([o.accuracy for o in power_runs if o.n == row.n]))
        assert row.predicted == pytest.approx(true_power(row.n), abs=0.03), "the true curve, nearly"
        assert row.inside == (row.low <= row.measured <= row.high)
    assert result.coverage == pytest.approx(np.mean([row.inside for row in result.rows]))


WIDE_GRID = (1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 130, 200, 300)


def bent(n: float) -> float:
    """A curve that climbs as a power law to 50 images per class, then stops: a frozen head
    that has learnt what its features allow."""
    return true_power(min(n, 50.0))


def test_inner_backtests_weight_the_families_that_predicted_this_data_best():
    saturating = synthetic("exp_approach", (0.85, 0.6, 10.0, 0.7), sd=0.003, grid=WIDE_GRID)
    fitted = curves.fit(saturating, **FAST)
    weights = fitted.calibration.weights
    assert sum(weights.values()) == pytest.approx(1)
    assert weights["exp_approach"] > 2 * weights["logarithmic"], "the unbounded log curve missed most"
    assert fitted.calibration.calibrated and fitted.calibration.origins == len(WIDE_GRID) - 5


def test_curves_that_missed_their_own_larger_slices_get_a_wider_interval():
    """Fitted on points that bend over, the curves overshoot the inner slices; the stated
    interval far out must reach down by that miss and hold the truth, which the bootstrap alone
    (the uncalibrated ensemble) leaves out."""
    rng = np.random.default_rng(3)
    runs = [Observation(n, bent(n) + rng.normal(0, 0.004), s, 0) for n in WIDE_GRID[:11] for s in range(3)]
    calibrated = curves.fit(runs, **FAST)
    plain = curves.answers.ensemble(runs, 40, np.random.default_rng(0), calibrated=False)
    wide, narrow = curves.band(calibrated, [1300])[0], curves.band(plain, [1300])[0]
    assert wide.low <= bent(1300) <= wide.high
    assert not narrow.low <= bent(1300), "the bootstrap alone is confidently wrong here"
    assert calibrated.calibration.arms(0.8)[0] < 0, "the curves overshot: a longer lower arm"


def test_the_backtest_is_the_whole_calibrated_procedure_on_the_smaller_slices(power_runs):
    result = curves.backtest(power_runs, fit_up_to=30, **FAST)
    assert result.calibrated and result.to_dict()["calibrated"] is True
    few = curves.backtest(power_runs, fit_up_to=8, **FAST)  # 5 counts: too few for two inner fits
    assert few.reason is None and not few.calibrated


def test_backtest_without_enough_points_says_why_in_one_sentence(power_runs):
    # "On the slices up to 2 images per class: Only 2 distinct image counts": two sentences glued
    found = curves.backtest(power_runs, fit_up_to=2, **FAST)
    assert found.rows == () and found.reason == (
        "On the slices up to 2 images per class: only 2 distinct image counts per class measured (1, 2); "
        "fitting a curve needs at least 3."
    )
    assert "No measured count above 80" in curves.backtest(power_runs, fit_up_to=80, **FAST).reason


@pytest.fixture(scope="module")
def two_classes() -> dict[str, list[Observation]]:
    """One class already saturated at 80 images, one still climbing steeply."""
    return {
        "saturated": synthetic("power_law", (0.99, 0.5, 1.5), seed=1),
        "steep": synthetic("power_law", (0.95, 0.8, 0.4), seed=2),
    }


def test_allocation_sends_labels_to_the_steep_class(two_classes):
    weights, current = {"saturated": 0.5, "steep": 0.5}, {"saturated": 80, "steep": 80}
    result = curves.allocate(two_classes, weights, current, budget=100, **FAST)
    assert sum(result.extra.values()) == 100 and result.extra["steep"] >= 90
    assert result.even_extra == {"saturated": 50, "steep": 50}
    assert result.expected_gain.estimate >= result.even_gain.estimate > 0
    assert result.expected_gain.low <= result.expected_gain.estimate <= result.expected_gain.high
    assert result.notes == []
    json.dumps(result.to_dict(), allow_nan=False)


def test_allocation_gives_a_plateau_nothing_and_an_unfittable_class_its_even_share(two_classes):
    per_class = {"flat": constant({1: 0.6, 5: 0.6, 20: 0.6}), **two_classes}
    weights = {"flat": 0.2, "saturated": 0.4, "steep": 0.4}
    result = curves.allocate(per_class, weights, dict.fromkeys(per_class, 80), budget=31, **FAST)
    assert result.even_extra == {"flat": 11, "saturated": 10, "steep": 10}  # the remainder goes first
    assert result.extra["flat"] == 0 and result.extra["steep"] >= 18 and sum(result.extra.values()) == 31
    assert len(result.notes) == 1 and result.notes[0].startswith("flat: its recall did not rise measurably")
    assert result.notes[0].endswith("so it gets none (an even split would give it 11).")
    per_class["zigzag"] = constant({1: 0.3, 2: 0.8, 3: 0.35, 5: 0.85, 8: 0.4, 13: 0.9, 20: 0.45, 30: 0.95})
    weights = {"flat": 0.1, "saturated": 0.3, "steep": 0.3, "zigzag": 0.3}
    result = curves.allocate(per_class, weights, dict.fromkeys(per_class, 80), budget=40, **FAST)
    assert result.extra["zigzag"] == result.even_extra["zigzag"] == 10
    assert any(note.startswith("zigzag: its recall jumps up and down") for note in result.notes)


def test_allocation_respects_the_room_each_class_has(two_classes):
    room = {"saturated": 100, "steep": 7}
    result = curves.allocate(
        two_classes,
        {"saturated": 0.5, "steep": 0.5},
        dict.fromkeys(two_classes, 20),
        budget=30,
        room=room,
        **FAST,
    )
    assert result.extra["steep"] == 7 and sum(result.extra.values()) == 30
    assert result.even_extra == {"saturated": 23, "steep": 7}
    with pytest.raises(ValueError, match="missing"):
        curves.allocate(two_classes, {"steep": 1.0}, dict.fromkeys(two_classes, 80), 10)


def test_allocation_adds_up_classes_fitted_by_different_families(two_classes):
    per_class = {"short": synthetic("power_law", POWER, grid=(1, 5, 20)), "steep": two_classes["steep"]}
    assert "piecewise_power_law" not in curves.fit_all(curves.curve_points(per_class["short"]))
    result = curves.allocate(per_class, {"short": 0.5, "steep": 0.5}, {"short": 20, "steep": 80}, 40, **FAST)
    assert sum(result.extra.values()) == 40 and result.notes == []
    assert result.expected_gain.low <= result.expected_gain.estimate <= result.expected_gain.high


def test_answers_are_json_ready(power_runs):
    for answer in (
        curves.images_needed(power_runs, 0.86, **FAST),
        curves.images_needed(power_runs, 0.99, **FAST),
    ):
        json.dumps(answer.to_dict(), allow_nan=False)
    fits = curves.fit_all(curves.curve_points(power_runs))
    json.dumps({name: fit.to_dict() for name, fit in fits.items()}, allow_nan=False)


def test_the_suggested_target_is_the_highest_above_the_best_that_the_curves_answer():
    """Every page opens on this target: halfway to the ceiling (86%) lies past what this curve
    answers, so the suggestion steps down to the highest whole percent above the best measured
    that it does answer, rather than one page opening on an unanswered 85% and another on 84%."""
    runs = synthetic("piecewise_power_law", TRUE_PARAMS["piecewise_power_law"])
    fitted = curves.fit(runs, 40, 0, 1000)
    counts = sorted({o.n for o in runs})
    points = tuple(
        CurvePoint(
            f"{n:g}/class",
            n,
            float(np.mean([o.accuracy for o in runs if o.n == n])),
            3,
            None,
            None,
            False,
        )
        for n in counts
    )
    analysis = Analysis(None, points, fitted, None, (), 0.8)  # the curve alone: no dataset behind it

    def answered(target: float) -> bool:
        return curves.answer_needed(fitted, target, 0.8).estimate is not None

    best, ceiling = max(p.accuracy for p in points), analysis.ceiling.estimate
    assert not answered(round((best + ceiling) / 2, 2)), "premise: halfway to the ceiling is past reach"
    suggested = analysis.suggested_target()
    assert suggested > best and answered(suggested) and not answered(suggested + 0.01)


def gallery_runs(dataset: str) -> tuple[list[Observation], int]:
    """A gallery curve's real runs (bench/results/gallery.json) and its holdout size."""
    gallery = json.loads((PROJECT_ROOT / "bench" / "results" / "gallery.json").read_text())
    about = next(found for found in gallery["datasets"] if found["dataset"] == dataset)
    return [Observation(*row) for row in about["observations"]], about["holdout"]


def test_the_point_is_the_power_laws_fit_and_the_weighted_median_where_it_is_not_fitted(power_runs):
    fitted = curves.fit(power_runs, **FAST)
    answer = curves.answer_at(fitted, 400)
    assert fitted.anchor == "power_law"
    assert answer.estimate.estimate == pytest.approx(answer.per_family["power_law"], abs=1e-12)
    others = curves.answers.ensemble(
        power_runs, 40, np.random.default_rng(0), families=("arctan", "mmf4", "algebraic_root")
    )
    values = curves.answer_at(others, 400).per_family
    assert others.anchor is None
    assert curves.answer_at(others, 400).estimate.estimate == pytest.approx(
        weighted_quantile(
            np.array(list(values.values())), np.array([others.weights[name] for name in values]), 0.5
        )
    )


def test_on_the_60000_image_set_the_point_lands_within_a_point_at_ten_times_the_data():
    # the issue's own measure on fm60k's real runs: fitted up to 480 per class, predicting 500 to
    # 4,800; the weighted median over families, the point before, was 1.75 points low at 4,800
    runs, holdout = gallery_runs("fm60k")
    found = curves.backtest(runs, 480, n_boot=100, n_holdout=holdout)
    last = found.rows[-1]
    assert last.n == 4800 and abs(last.predicted - last.measured) <= 0.01
    assert found.inside >= 4 and found.calibrated
    median = curves.backtest(runs, 480, n_boot=100, n_holdout=holdout, anchor=None).rows[-1]
    assert median.measured - median.predicted > 0.015


def test_no_upper_end_is_blamed_on_what_holds_the_band_down():
    # fm-hard4's real runs (the gallery): at 85% the inner backtests' lower arm is zero and 90% of
    # the bootstrap curves get there; the slice's own noise keeps the band's lower edge under it,
    # which is what the reason says (it said "overshot by up to -0.0 points", then "10% of the
    # bootstrap curves never reach 85%", which cannot open an 80% interval)
    runs, holdout = gallery_runs("fm-hard4")
    fitted = curves.fit(runs, 100, 0, holdout)
    answer = curves.answer_needed(fitted, 0.85)
    assert answer.estimate is None and "overshot" not in answer.reason
    point = float(f"{answer.per_family['power_law']:.2g}")
    assert answer.reason.startswith(
        f"The fitted curve reaches 85% at about {point:,.0f} images per class, but "
        "the 80% interval has no upper end: a slice measured there would carry the noise of its holdout "
        "images and seeds (about ±1.8 points), and allowing for it the interval's lower end stays under 85%"
    )


def test_a_count_measured_once_borrows_the_spread_of_its_nearest_neighbour():
    # the whole pool is trained once: pooling the few-shot counts' spread into it made the end of a
    # rising curve look like noise (fm-easy5 read "flat since 200 per class" while it rose 2.4 points)
    obs = [Observation(1, a, s) for s, a in enumerate((0.3, 0.5, 0.7))]
    obs += [Observation(500, a, s) for s, a in enumerate((0.94, 0.95, 0.96))] + [Observation(1200, 0.96, 0)]
    *_, whole = curves.curve_points(obs, floor=0.0)
    assert whole.runs == 1 and whole.variance == pytest.approx(np.var((0.94, 0.95, 0.96), ddof=1))
