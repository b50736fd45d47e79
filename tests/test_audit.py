"""The holdout audit finds flipped labels and planted copies, reports nothing on the clean bundled
dataset, counts confusions right, and is computed once per dataset, backbone, size and split."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from bench.audit import flip_holdout
from core.answers import audit as audit_module
from core.answers.audit import (
    Audit,
    ConfusedPair,
    LabelIssue,
    NearDuplicate,
    audit,
    confused_pairs,
    near_duplicates,
)
from core.base.errors import UserError
from core.base.paths import DEFAULT_DATA
from core.data.datasets import scan
from core.data.splits import make_splits
from core.store.config import RunConfig
from tests.conftest import copy_sample


@pytest.mark.train
def test_flipped_holdout_labels_are_ranked_first(tmp_path, cache_dir, capsys):
    """The issue's check: 5% of the bundled dataset's holdout labels flipped; the top k (k flipped)
    must hold at least half of them."""
    data = shutil.copytree(DEFAULT_DATA, tmp_path / "fashion-mnist")
    flipped = flip_holdout(data, cache_dir)
    found = audit(data, cache_dir)
    k = len(flipped)
    top = found.label_issues[:k]
    hits = [issue for issue in top if issue.path in flipped]
    in_list = sum(issue.path in flipped for issue in found.label_issues)
    right = sum(issue.suggested == flipped[issue.path] for issue in hits)
    with capsys.disabled():
        print(
            f"\nflipped {k} of {found.holdout_size} holdout labels: top {k} precision "
            f"{len(hits) / len(top):.2f} recall {len(hits) / k:.2f}; whole list "
            f"{len(found.label_issues)} images, precision "
            f"{in_list / len(found.label_issues):.2f} recall {in_list / k:.2f}; true class suggested for "
            f"{right} of {len(hits)} found"
        )
    assert len(hits) / k >= 0.5
    assert [i.score for i in found.label_issues] == sorted(
        (i.score for i in found.label_issues), reverse=True
    )
    # the rotation keeps the pool and the holdout and validation sets' images as in the bundled
    # dataset, so this is the clean dataset's count of pairs: none (no image there is a copy)
    assert found.near_duplicates == ()
    assert found.leakage_warning() is None


def plant_copies(root: Path, cache_dir: Path, count: int, seed: int = 0) -> dict[str, str]:
    """Copy ``count`` training-pool images into their class folders, resized 28 -> 40 px and
    saved as JPEG at quality 70. Returns copy -> original (relative paths)."""
    dataset = scan(root, cache_dir)
    pool = np.concatenate(make_splits(dataset.labels, dataset.classes).pools)
    planted = {}
    for i in np.random.default_rng(seed).choice(pool, count, replace=False):
        original = Path(dataset.paths[i])
        image = Image.open(root / original).convert("RGB").resize((40, 40), Image.Resampling.BICUBIC)
        copy = original.with_name(f"copy-{original.stem}.jpg")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=70)
        (root / copy).write_bytes(buffer.getvalue())
        planted[copy.as_posix()] = original.as_posix()
    return planted


@pytest.mark.train
def test_planted_copies_are_found_and_nothing_else(tmp_path, cache_dir):
    """Planting files changes the split, so which copies pair a pool image with a holdout or
    validation image is read from the new split; enough are planted for at least 5 such pairs."""
    data = copy_sample(DEFAULT_DATA, tmp_path / "planted", ("Trouser", "Bag", "Sneaker", "Shirt"), 40)
    planted = plant_copies(data, cache_dir, 40)
    dataset = scan(data, cache_dir)
    splits = make_splits(dataset.labels, dataset.classes)
    where = {
        dataset.paths[i]: name
        for name, idx in (("holdout", splits.holdout), ("validation", splits.val))
        for i in idx
    }
    expected = set()
    for copy, original in planted.items():
        if (copy in where) != (original in where):  # one in the pool, the other held out
            train, other = (original, copy) if copy in where else (copy, original)
            expected.add((train, other, where[other]))
    assert len(expected) >= 5
    found = audit(data, cache_dir)
    pairs = {(d.train_path, d.other_path, d.other_set) for d in found.near_duplicates}
    assert pairs == expected  # every planted pair, and no pair of distinct images
    assert all(d.hash_distance <= audit_module.MAX_HASH_DISTANCE for d in found.near_duplicates)
    assert str(len({other for _, other, _ in expected})) in found.leakage_warning()


def test_near_duplicates_compare_in_blocks(monkeypatch):
    """Blocks smaller than the sets give the same pairs: an exact copy at distance 0 and
    similarity 1, and nothing between different images."""
    monkeypatch.setattr(audit_module, "BLOCK", 2)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    images[7] = images[1]
    features = rng.normal(size=(9, 16)).astype(np.float32)
    features[7] = features[1] * 2
    paths = tuple(f"c/{i}.png" for i in range(9))
    found = near_duplicates(features, images, np.arange(5), {"holdout": np.array([5, 6, 7, 8])}, paths)
    assert [(d.train_index, d.other_index, d.other_set, d.hash_distance) for d in found] == [
        (1, 7, "holdout", 0)
    ]
    assert found[0].similarity == pytest.approx(1.0)


def test_confused_pairs_sum_runs_and_share_of_the_true_class():
    def run(confusion):
        return SimpleNamespace(classes=("a", "b", "c"), holdout=SimpleNamespace(confusion=confusion))

    runs = [run(((8, 2, 0), (1, 9, 0), (0, 3, 7))), run(((6, 4, 0), (0, 10, 0), (0, 0, 10)))]
    assert confused_pairs(runs) == [
        ConfusedPair("a", "b", 6, 6 / 20),
        ConfusedPair("c", "b", 3, 3 / 20),
        ConfusedPair("b", "a", 1, 1 / 20),
    ]
    assert confused_pairs(runs, top=1) == [ConfusedPair("a", "b", 6, 0.3)]
    assert confused_pairs([]) == []


def fake_run(fingerprint: str, split_seed: int, lr: float, confusion) -> SimpleNamespace:
    config = RunConfig(
        data="x", backbone="efficientnet_lite0", mode="frozen", slice="100%", epochs=20,
        image_size=96, batch_size=256, lr=lr, split_seed=split_seed,
    )  # fmt: skip
    return SimpleNamespace(
        info=SimpleNamespace(fingerprint=fingerprint),
        config=config,
        classes=("Bag", "Sneaker", "Trouser"),
        n_train=30,
        holdout=SimpleNamespace(confusion=confusion),
    )


@pytest.mark.train
def test_audit_is_cached_per_split_and_confusions_are_read_afresh(tiny_data, cache_dir, monkeypatch):
    first = audit(tiny_data, cache_dir)
    files = sorted((cache_dir / "audits").glob("*.json"))
    assert [f.name for f in files] == [f"{first.fingerprint}-efficientnet_lite0-96-0.1-0.1-0.json"]
    assert first.holdout_size == 3 and first.confused_pairs == ()

    def recomputed(*args, **kwargs):
        raise AssertionError("the cached audit was computed again")

    monkeypatch.setattr(audit_module, "label_issues", recomputed)
    monkeypatch.setattr(audit_module, "near_duplicates", recomputed)
    runs = [
        fake_run(first.fingerprint, 0, 0.01, ((0, 1, 0), (0, 1, 0), (0, 0, 1))),
        fake_run(first.fingerprint, 0, 0.1, ((1, 0, 0), (0, 0, 1), (0, 0, 1))),
        fake_run(first.fingerprint, 1, 0.01, ((0, 0, 1), (0, 1, 0), (0, 0, 1))),  # another split
        fake_run("another-dataset", 0, 0.01, ((0, 0, 1), (0, 1, 0), (0, 0, 1))),
    ]
    monkeypatch.setattr(audit_module, "list_runs", lambda cache: runs)
    again = audit(tiny_data, cache_dir)
    assert again.label_issues == first.label_issues and again.near_duplicates == first.near_duplicates
    assert again.confused_pairs == (
        ConfusedPair("Bag", "Sneaker", 1, 0.5),
        ConfusedPair("Sneaker", "Trouser", 1, 0.5),
    )
    only = audit(tiny_data, cache_dir, experiment="lr 0.1")
    assert only.confused_pairs == (ConfusedPair("Sneaker", "Trouser", 1, 1.0),)
    with pytest.raises(UserError, match="lr 5"):
        audit(tiny_data, cache_dir, experiment="lr 5")
    assert audit_module.cached(cache_dir, first.fingerprint).label_issues == first.label_issues
    assert audit_module.cached(cache_dir, first.fingerprint, (0.1, 0.1, 1)) is None

    monkeypatch.undo()
    audit(tiny_data, cache_dir, split=(0.1, 0.1, 1))
    assert len(list((cache_dir / "audits").glob("*.json"))) == 2


def test_a_class_too_small_to_split_is_a_user_error(tmp_path, cache_dir):
    data = copy_sample(DEFAULT_DATA, tmp_path / "small", ("Bag", "Sneaker"), 5)
    for extra in sorted((data / "Sneaker").iterdir())[2:]:
        extra.unlink()
    with pytest.raises(UserError, match="'Sneaker' has 2 readable image"):
        audit(data, cache_dir)
    with pytest.raises(UserError, match="unknown backbone 'nope'"):
        audit(copy_sample(DEFAULT_DATA, tmp_path / "fine", ("Bag", "Sneaker"), 5), cache_dir, backbone="nope")


def test_to_dict_is_json_with_the_cli_keys_and_reads_back():
    found = Audit(
        dataset="/data/x",
        fingerprint="f" * 32,
        backbone="efficientnet_lite0",
        image_size=96,
        split=(0.1, 0.1, 0),
        label_issues=(LabelIssue(3, "Bag/1.png", "Bag", "Sneaker", 0.93),),
        near_duplicates=(NearDuplicate(7, "Bag/2.png", 3, "Bag/1.png", "holdout", 0.91, 4),),
        confused_pairs=(ConfusedPair("Shirt", "T-shirt_top", 12, 0.24),),
        holdout_size=50,
    )
    record = json.loads(json.dumps(found.to_dict(), allow_nan=False))
    assert record["label_issues"][0].keys() >= {"path", "given", "suggested", "score"}
    assert record["near_duplicates"][0].keys() >= {
        "train_path",
        "other_path",
        "other_set",
        "similarity",
        "hash_distance",
    }
    assert record["confused_pairs"][0].keys() >= {"true", "predicted", "count", "share"}
    assert record["leakage_warning"].startswith("1 holdout/validation image")
    assert Audit.from_dict(record) == found
    assert found.label_share().estimate == pytest.approx(1 / 50)


def test_left_out_images_rescore_a_run_as_a_variant(cache_dir):
    from core.store.evaluate import summarize
    from core.store.record import Predictions, RunInfo, Summary

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 0])
    predictions = Predictions(("a", "b"), np.arange(4), ("a/1", "b/2", "b/3", "a/4"), labels, probs)
    config = RunConfig(data="x", backbone="efficientnet_lite0", mode="frozen", slice="100%")
    summary = Summary(
        RunInfo("r1", config, ("a", "b"), "f"),
        10,
        4,
        4,
        summarize(probs, labels, ("a", "b")),
        1.0,
        0.0,
        "cpu",
    )
    assert summary.accuracy == 0.5
    audit_module.set_excluded(cache_dir, "f", (0.1, 0.1, 0), ["b/3", "a/4"])
    assert audit_module.excluded(cache_dir, "f") == ("a/4", "b/3")
    rescored, kept = audit_module.rescored(summary, predictions, audit_module.excluded(cache_dir, "f"))
    assert (rescored.accuracy, rescored.n_holdout, kept.paths) == (1.0, 2, ("a/1", "b/2"))
    audit_module.set_excluded(cache_dir, "f", (0.1, 0.1, 0), ())
    assert audit_module.excluded(cache_dir, "f") == ()
    assert audit_module.variant_label("x · abc", 2) == "x · abc · without 2 audited images"


def leak_one_holdout_image(root: Path, cache_dir: Path) -> tuple[str, str]:
    """Overwrite a holdout image with a resized, re-encoded copy of a training-pool image of its
    class (names and class sizes stay, so the split stays). Returns (pool path, holdout path)."""
    dataset = scan(root, cache_dir)
    splits = make_splits(dataset.labels, dataset.classes)
    target = int(splits.holdout[0])
    source = next(int(i) for i in np.concatenate(splits.pools) if dataset.labels[i] == dataset.labels[target])
    image = Image.open(root / dataset.paths[source]).convert("RGB").resize((56, 56), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    Image.open(buffer).save(root / dataset.paths[target], "PNG")
    return dataset.paths[source], dataset.paths[target]


@pytest.mark.train
def test_audit_cli_contract_and_the_holdout_page_leakage_warning(tiny_data, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core.base.paths import PROJECT_ROOT, write_json
    from core.engine.pipeline import train_run
    from tests.command import core
    from tests.quick import quick_run

    data = shutil.copytree(tiny_data, tmp_path / "leaky")
    cache = tmp_path / "cache"
    train, held = leak_one_holdout_image(data, cache)
    train_run(quick_run(data, slice="100%"), cache)

    done = core(cache, "audit", "--data", str(data), "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["backbone"] == "efficientnet_lite0" and record["image_size"] == 64, "the runs' features"
    assert [(p["train_path"], p["other_path"]) for p in record["near_duplicates"]] == [(train, held)]
    assert 0.5 <= record["near_duplicates"][0]["similarity"] <= 1.0
    for issue in record["label_issues"]:
        assert issue.keys() >= {"path", "given", "suggested", "score"}
    assert sum(p["count"] for p in record["confused_pairs"]) <= 3, "one run on a 3-image holdout"

    monkeypatch.setenv("HMD_CACHE", str(cache))
    write_json(cache / "ui.json", {"dataset": str(data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120).run()
    app.switch_page("pages/4_Holdout.py").run()
    assert not app.exception, app.exception
    assert any("Leakage: the audit found 1 holdout" in w.value for w in app.warning)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/no/such/folder"], "error: data folder not found: /no/such/folder"),
        (["--backbone", "smallcnn"], "error: backbone 'smallcnn' has no pretrained weights"),
        (["--image-size", "8"], "error: --image-size must be between 32"),
    ],
)
def test_audit_bad_input_is_one_line_and_exit_2(tiny_data, cache_dir, args, message):
    from tests.command import core

    done = core(cache_dir, "audit", "--data", str(tiny_data), *args, "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.train
def test_audit_page_flags_lets_a_person_leave_images_out_and_the_holdout_page_scores_without_them(
    curve_cache, curve_data, tmp_path, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    from core.base.paths import PROJECT_ROOT, write_json

    cache = shutil.copytree(curve_cache, tmp_path / "audited")
    monkeypatch.setenv("HMD_CACHE", str(cache))
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300).run()
    app.switch_page("pages/12_Audit.py").run()
    assert any("has not been audited yet" in i.value for i in app.info)
    app.button(key="audit_start").click().run()
    assert not app.exception, app.exception
    assert app.metric[0].label == "Holdout labels flagged"
    boxes = [box for box in app.checkbox if box.key.startswith("audit_out::")]
    assert len(boxes) >= 2, "the curve dataset's look-alike classes give flags to show"
    for box in boxes[:2]:
        box.check()
    app.run()
    app.button(key="audit_exclude").click().run()
    assert not app.exception, app.exception
    assert any("without 2 audited images" in s.value for s in app.success)
    assert len(app.dataframe) == 1, "the confused pairs of the experiment"

    app.switch_page("pages/4_Holdout.py").run()
    picker = next(box for box in app.selectbox if box.key.startswith("hold_dataset"))
    chosen = next(option for option in picker.options if "without 2 audited images" in option)
    picker.set_value(chosen).run()
    assert not app.exception, app.exception
    assert any("58 images" in c.value for c in app.caption), "60 holdout images less the 2 left out"


@pytest.mark.browser
@pytest.mark.train
def test_audit_in_a_real_browser(curve_cache, curve_data, tmp_path):
    """Audit the holdout from the browser, leave an image out, and read the Holdout page's bars on
    the variant without it."""
    import re

    from core.base.paths import write_json
    from tests.browser import browser_page, need_chromium, screenshot, serve, wait_rendered

    need_chromium()
    cache = shutil.copytree(curve_cache, tmp_path / "served")
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    with serve(cache) as url, browser_page() as page:
        page.goto(f"{url}/Audit", wait_until="domcontentloaded")
        page.get_by_role("button", name="Audit the holdout").click(timeout=120_000)
        page.get_by_text("Holdout labels flagged").wait_for(timeout=180_000)
        wait_rendered(page)
        page.get_by_text("leave out").first.click()
        page.get_by_role("button", name="Score without the 1 checked image").click(timeout=60_000)
        page.get_by_text(re.compile("without 1 audited image")).first.wait_for(timeout=60_000)
        wait_rendered(page)
        screenshot(page, "12-audit")

        page.goto(f"{url}/Holdout", wait_until="domcontentloaded")
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Holdout").first.click(timeout=120_000)
        page.get_by_role("option", name=re.compile("without 1 audited image")).click()
        page.get_by_text(re.compile(r"59 images")).first.wait_for(timeout=60_000)
        wait_rendered(page)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
