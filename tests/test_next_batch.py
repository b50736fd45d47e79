"""``python -m core next-batch --pool``: the next batch chosen from an unlabelled pool, as other
tools call it (issue 23, items 1 and 5).

The pool is real images of the bundled dataset that the tiny dataset does not hold, in a nested
layout, plus an unreadable file, a copy of a holdout image and a copy of a training image, which
must be named in ``excluded`` and never proposed. The Label Studio file is checked with the real
``label-studio-sdk``: its labelling config parses and validates, every task carries the config's
image variable, and every pre-annotation validates against the config.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.answers.audit import copies_of
from core.answers.nextbatch.batch import NextBatch
from core.answers.nextbatch.exports import BatchItem, label_config, label_studio_tasks
from core.base.paths import DEFAULT_DATA
from core.data.datasets import scan
from core.data.splits import make_splits
from tests.command import core
from tests.conftest import TINY_CLASSES

SIZE = ["--image-size", "64"]  # the cold start's features at the size the trained head uses
TRAIN = ["run", "--slice", "3/class", "--seed", "1", *SIZE, "--epochs", "3", "--json"]


@pytest.fixture(scope="module")
def pool(tiny_data, tmp_path_factory) -> Path:
    """9 new images in nested folders, a damaged file, a copy of a holdout and of a training image."""
    root = tmp_path_factory.mktemp("pool") / "unlabelled"
    for n, name in enumerate(TINY_CLASSES):
        folder = root / f"camera {n}" / "2026" if n else root
        folder.mkdir(parents=True, exist_ok=True)
        for source in sorted((DEFAULT_DATA / name).iterdir())[200:203]:
            shutil.copy(source, folder / f"{name}-{source.name}")
    (root / "camera 1" / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    dataset = scan(tiny_data, tmp_path_factory.mktemp("scan-cache"))
    splits = make_splits(dataset.labels, dataset.classes, 0.1, 0.1, 0)
    shutil.copy(tiny_data / dataset.paths[splits.holdout[0]], root / "from the holdout.png")
    shutil.copy(tiny_data / dataset.paths[splits.pools[0][0]], root / "camera 2" / "already labelled.png")
    return root


@pytest.fixture(scope="module")
def cold_cache(tmp_path_factory) -> Path:
    """A cache without runs, shared by the cold-start tests: the backbone is compiled once."""
    return tmp_path_factory.mktemp("cold")


@pytest.fixture(scope="module")
def trained_cache(tiny_data, tmp_path_factory) -> Path:
    """A cache with one frozen-backbone run on the tiny dataset: the current head."""
    cache = tmp_path_factory.mktemp("trained")
    done = core(cache, *TRAIN, "--data", str(tiny_data))
    assert done.returncode == 0, done.stderr
    return cache


def next_batch(cache: Path, data: Path, pool: Path, *extra: str):
    return core(cache, "next-batch", "--data", str(data), "--pool", str(pool), *extra, "--json")


def assert_label_studio_accepts(tasks: list[dict], config: str) -> None:
    """Label Studio's own SDK: the config validates, each task has the image its config reads,
    each prediction validates against the config (no errors listed)."""
    from label_studio_sdk.label_interface import LabelInterface

    interface = LabelInterface(config)
    interface.validate()
    variables = {tag.value_name for tag in interface.objects}
    assert variables == {"image"}
    for task in tasks:
        assert all(task["data"].get(name) for name in variables)
        for prediction in task.get("predictions", []):
            assert interface.validate_prediction(prediction, return_errors=True) == []


def test_label_studio_accepts_the_tasks_and_their_suggestions():
    classes = ("T-shirt/top", "Bag & co", 'Quote "x"')
    items = [
        BatchItem("/pool/a b/1.png", 1, 0.9, classes[1], 0.51, "uncertain between Bag & co and T-shirt/top"),
        BatchItem("/pool/2.png", 2, 0.4, classes[2], 0.97, "typical of an unlabelled cluster"),
    ]
    tasks = label_studio_tasks(items, "hybrid")
    assert_label_studio_accepts(tasks, label_config(classes))
    assert [t["predictions"][0]["result"][0]["value"]["choices"] for t in tasks] == [
        [classes[1]],
        [classes[2]],
    ]
    from label_studio_sdk.label_interface import LabelInterface

    wrong = {
        **tasks[0]["predictions"][0],
        "result": [{**tasks[0]["predictions"][0]["result"][0], "value": {"choices": ["Cat"]}}],
    }
    assert LabelInterface(label_config(classes)).validate_prediction(
        wrong, return_errors=True
    )  # the check bites


def test_a_pool_image_is_a_copy_only_when_both_the_features_and_the_hash_agree():
    rng = np.random.default_rng(0)
    ref_features, ref_hashes = rng.normal(size=(5, 8)), rng.integers(0, 2**63, size=(5, 4), dtype=np.uint64)
    features = np.stack([ref_features[3] * 2, ref_features[1], ref_features[2], -ref_features[0]])
    hashes = ref_hashes[[3, 1, 2, 0]].copy()
    hashes[0, 0] ^= np.uint64(0b1011)  # 3 bits off: still a copy
    hashes[1] = ~hashes[1]  # the same features, another picture: not a copy
    hashes[2, 0] ^= np.uint64(2**30 - 1)  # 30 bits off: as far as distinct images come
    # row 3: the same picture's hash, features pointing away: not a copy either
    assert copies_of(features, hashes, ref_features, ref_hashes).tolist() == [3, -1, -1, -1]
    assert copies_of(features, hashes, ref_features[:0], ref_hashes[:0]).tolist() == [-1] * 4


@pytest.mark.train
def test_a_cold_start_batch_names_what_it_left_out_and_suggests_no_class(
    tiny_data, pool, cold_cache, tmp_path
):
    out, tasks = tmp_path / "batch.csv", tmp_path / "tasks.json"
    args = ["--size", "4", "--strategy", "typical", "--out", str(out), "--label-studio", str(tasks), *SIZE]
    done = next_batch(cold_cache, tiny_data, pool, *args)
    assert done.returncode == 0, done.stderr
    batch = json.loads(done.stdout)
    assert (batch["strategy"], batch["size"], batch["cold_start"]) == ("typical", 4, True)
    assert batch["class_weights"] is None
    assert [item["rank"] for item in batch["items"]] == [1, 2, 3, 4]
    assert all(item["suggested"] is None and item["p_suggested"] is None for item in batch["items"])
    reasons = {Path(item["path"]).relative_to(pool).as_posix(): item["reason"] for item in batch["excluded"]}
    assert set(reasons) == {"camera 1/damaged.png", "from the holdout.png", "camera 2/already labelled.png"}
    assert reasons["from the holdout.png"].startswith("near-copy of holdout image")
    assert reasons["camera 2/already labelled.png"].startswith("near-copy of labelled image")
    assert reasons["camera 1/damaged.png"].startswith("unreadable")
    assert len(list((cold_cache / "features").glob("*-efficientnet_lite0-64-*.npy"))) == 2  # dataset, pool
    proposed = {Path(item["path"]).relative_to(pool).as_posix() for item in batch["items"]}
    assert not proposed & set(reasons)
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["path"] for row in rows] == [item["path"] for item in batch["items"]]
    assert all(row["suggested"] == "" for row in rows)
    written = json.loads(tasks.read_text())
    assert all("predictions" not in task for task in written)
    assert_label_studio_accepts(written, tasks.with_suffix(".xml").read_text())


@pytest.mark.train
def test_the_current_head_suggests_a_class_the_labelling_tool_prefills(
    tiny_data, pool, trained_cache, tmp_path
):
    cache = tmp_path / "cache"
    shutil.copytree(trained_cache, cache)
    out, tasks = tmp_path / "batch.csv", tmp_path / "tasks.json"
    done = next_batch(cache, tiny_data, pool, "--size", "9", "--out", str(out), "--label-studio", str(tasks))
    assert done.returncode == 0, done.stderr
    batch = json.loads(done.stdout)
    assert batch["strategy"] == "hybrid" and not batch["cold_start"] and len(batch["items"]) == 9
    assert NextBatch.from_dict(batch).to_dict() == batch, "the page reads back what the command printed"
    # one slice measured: no class's curve to rank by, so the budget's allocation is the even split
    assert batch["class_weights"] == pytest.approx(dict.fromkeys(TINY_CLASSES, 1 / 3))
    assert all(item["suggested"] in TINY_CLASSES and 0 < item["p_suggested"] <= 1 for item in batch["items"])
    hits = sum(Path(item["path"]).name.startswith(item["suggested"]) for item in batch["items"])
    assert hits >= 6  # a head on 3 images per class tells trousers, bags and sneakers apart
    written = json.loads(tasks.read_text())
    assert [t["predictions"][0]["result"][0]["value"]["choices"][0] for t in written] == [
        item["suggested"] for item in batch["items"]
    ]
    assert_label_studio_accepts(written, tasks.with_suffix(".xml").read_text())
    again = next_batch(cache, tiny_data, pool, "--size", "9", "--out", str(tmp_path / "again.csv"))
    assert json.loads(again.stdout)["items"] == batch["items"]  # same seed, same batch


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--size", "4", "--strategy", "smartest"], "unknown strategy 'smartest'"),
        (["--size", "40"], "a batch of 40 is larger than the pool"),
        (["--size", "0"], "--size must be at least 1"),
    ],
)
def test_bad_requests_exit_2_with_one_line_before_any_feature_is_computed(
    flags, named, tiny_data, pool, tmp_path
):
    done = next_batch(tmp_path / "cache", tiny_data, pool, *flags, "--out", str(tmp_path / "b.csv"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and named in done.stderr
    assert not (tmp_path / "b.csv").exists() and not (tmp_path / "cache" / "features").exists()


def test_an_empty_pool_exits_2_naming_it(tiny_data, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    done = next_batch(
        tmp_path / "cache", tiny_data, tmp_path / "empty", "--size", "1", "--out", str(tmp_path / "b.csv")
    )
    assert done.returncode == 2 and "holds no readable image" in done.stderr and done.stderr.count("\n") == 1


def test_a_pool_inside_the_dataset_exits_2_naming_both(tiny_data, tmp_path):
    done = next_batch(
        tmp_path / "cache", tiny_data, tiny_data / "Bag", "--size", "1", "--out", str(tmp_path / "b.csv")
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"the pool {tiny_data / 'Bag'} and the dataset {tiny_data} overlap" in done.stderr


@pytest.mark.train
def test_a_pool_that_is_the_holdout_exits_2_naming_it(tiny_data, cold_cache, tmp_path):
    dataset = scan(tiny_data, tmp_path / "scan-cache")
    holdout = make_splits(dataset.labels, dataset.classes, 0.1, 0.1, 0).holdout
    (tmp_path / "holdout").mkdir()
    for i in holdout:
        shutil.copy(tiny_data / dataset.paths[i], tmp_path / "holdout" / dataset.paths[i].replace("/", "-"))
    done = next_batch(
        cold_cache, tiny_data, tmp_path / "holdout", "--size", "1", "--out", str(tmp_path / "b.csv"), *SIZE
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "is the dataset's holdout: 3 of its 3 images" in done.stderr


def test_each_batch_asked_for_on_the_page_writes_into_a_folder_of_its_own(tmp_path):
    """Two people choosing batches from one dashboard once wrote the same batch.csv; the same
    request finds its own folder again."""
    from core.answers.nextbatch.batch import Request, with_own_files

    asked = Request(tmp_path / "data", tmp_path / "pool", 20, "hybrid")
    mine, again = with_own_files(asked, tmp_path), with_own_files(asked, tmp_path)
    theirs = with_own_files(Request(tmp_path / "data", tmp_path / "pool", 50, "hybrid"), tmp_path)
    assert mine.out == again.out and mine.out.parent == mine.label_studio.parent
    assert mine.out.parent != theirs.out.parent
    assert mine.out.parent.parent == tmp_path / "nextbatch" / "batches"
    assert (mine.out.name, mine.label_studio.name) == ("batch.csv", "tasks.json")
