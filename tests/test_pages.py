"""Every page with Streamlit's AppTest: on an empty cache, on real runs, and on bad input."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import testsets
from core.base.intervals import wilson
from core.base.locks import try_lock
from core.engine.pipeline import sweep
from core.serving import jobs
from core.store import runs
from tests.apptest import open_page, texts
from tests.quick import quick_run, until_drawn


def path_box(app: AppTest):
    """The Data page's folder-path box (keyed by the dataset in use, so it follows it)."""
    return next(box for box in app.text_input if box.key.startswith("data_path::"))


@pytest.fixture(scope="module")
def grid_cache(tiny_data, tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("pages-cache")
    base = quick_run(tiny_data, epochs=3)
    sweep(base, ["1/class", "3/class", "100%"], [1, 2], cache)
    return cache


def test_data_page_shows_counts_splits_and_bad_files(tmp_path, cache_dir, monkeypatch, tiny_data):
    messy = tmp_path / "messy"
    shutil.copytree(tiny_data, messy)
    (messy / "Bag" / "broken.jpg").write_bytes(b"not a jpeg")
    app = open_page(cache_dir, "pages/1_Data.py", monkeypatch, data=messy)
    assert "36 readable images in 3 classes" in [h.value for h in app.subheader][0]
    frames = [d.value for d in app.dataframe]
    splits = app.table[0].value
    assert "note" not in splits.columns, "no empty column when every slice fits"
    sizes = splits.set_index("set")["images in all"]
    assert sizes["holdout (fixed)"] == 3 and sizes["slice 1/class"] == 3
    assert splits.set_index("set").at["slice 1/class", "images per class"] == "1"
    assert "pool has 10" in " ".join(splits.astype(str).values.ravel()) or "slice 20%" in sizes.index
    assert any("file" in f.columns and "Bag/broken.jpg" in f["file"].tolist() for f in frames)
    reasons = next(f for f in frames if "file" in f.columns).set_index("file")["reason"]
    assert reasons["Bag/broken.jpg"].startswith("not an image this tool can read")
    # one row of six columns per class (a wrapped grid left orphans), then the augmentation preview
    assert len(app.get("image")) == 3 * 6 + 12, "six samples a class; the original and 11 augmented views"


def test_the_split_chosen_on_the_data_page_is_what_new_runs_use(cache_dir, monkeypatch, tiny_data):
    app = open_page(cache_dir, "pages/1_Data.py", monkeypatch, data=tiny_data)
    app.number_input(key="data_holdout").set_value(0.25).run()
    sizes = app.table[0].value.set_index("set")["images in all"]
    assert sizes["holdout (fixed)"] == 9
    app.switch_page("pages/2_Train.py").run()
    app.multiselect(key="train_slices").set_value(["1/class"])
    with try_lock(cache_dir / "jobs" / "worker.lock"):  # as if a worker were busy: nothing trains here
        app.button[0].click().run()
    assert [j.config.holdout for j in jobs.list_jobs(cache_dir)] == [0.25]


def test_the_train_form_keeps_its_values_across_a_reload(cache_dir, monkeypatch, tiny_data):
    # as if a worker were busy throughout: nothing trains here, and no page starts a worker
    with try_lock(cache_dir / "jobs" / "worker.lock"):
        app = open_page(cache_dir, "pages/2_Train.py", monkeypatch, data=tiny_data)
        app.multiselect(key="train_slices").set_value(["3/class", "100%"])
        app.selectbox(key="train_aug").set_value("light")
        app.text_input(key="train_seeds").set_value("4, 5")
        app.number_input(key="train_epochs").set_value(7)
        app.button[0].click().run()
        reloaded = open_page(cache_dir, "pages/2_Train.py", monkeypatch)  # a new browser session
        assert reloaded.multiselect(key="train_slices").value == ["3/class", "100%"]
        assert reloaded.selectbox(key="train_aug").value == "light"
        assert reloaded.text_input(key="train_seeds").value == "4, 5"
        assert reloaded.number_input(key="train_epochs").value == 7

        saved = json.loads((cache_dir / "ui.json").read_text())
        saved["forms"]["train"]["train_backbone"] = "a-backbone-since-removed"
        (cache_dir / "ui.json").write_text(json.dumps(saved))
        reloaded = open_page(cache_dir, "pages/2_Train.py", monkeypatch)
        assert reloaded.selectbox(key="train_backbone").value == "efficientnet_lite0"
        assert reloaded.text_input(key="train_seeds").value == "4, 5"
    assert not (cache_dir / "jobs" / "worker.log").exists(), "no worker was started"


def test_data_page_rejects_class_folders_without_images(tmp_path, cache_dir, monkeypatch):
    for name in ("cats", "dogs"):
        (tmp_path / "empty" / name).mkdir(parents=True)
    app = open_page(cache_dir, "pages/1_Data.py", monkeypatch)
    app.radio(key="data_source").set_value("a folder path").run()
    path_box(app).set_value(str(tmp_path / "empty")).run()
    assert not app.exception
    assert "has class folders but no readable images" in texts(app)


def test_data_page_rejects_a_missing_folder(cache_dir, monkeypatch):
    app = open_page(cache_dir, "pages/1_Data.py", monkeypatch)
    app.radio(key="data_source").set_value("a folder path").run()
    path_box(app).set_value("/no/such/dataset").run()
    assert not app.exception
    assert "data folder not found: /no/such/dataset" in texts(app)


@pytest.mark.train
def test_train_page_queues_runs_that_the_worker_trains(cache_dir, monkeypatch, tiny_data):
    app = open_page(cache_dir, "pages/2_Train.py", monkeypatch, data=tiny_data)
    app.multiselect(key="train_slices").set_value(["1/class"])
    app.text_input(key="train_seeds").set_value("1, 2")
    app.number_input(key="train_epochs").set_value(2)
    app.number_input(key="train_size").set_value(64)
    app.button[0].click().run()  # the form's Launch button
    assert "2 runs queued, 0 already cached" in texts(app)
    deadline = time.monotonic() + 180
    while any(j.state in ("queued", "running") for j in jobs.list_jobs(cache_dir)):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert [j.state for j in jobs.list_jobs(cache_dir)] == ["complete", "complete"]
    app.run()
    finished = next(frame.value for frame in app.dataframe if "train s" in frame.value.columns)
    assert "run" not in finished.columns, "no run ids until technical names are asked for"
    ids = [link.removeprefix("/Run?run=") for link in finished["open"]]
    shown = sorted(zip(ids, finished["accuracy"], finished["train s"], strict=True))
    assert shown == sorted((s.run_id, s.accuracy, s.train_seconds) for s in runs.list_runs(cache_dir))
    app.button[0].click().run()
    assert "0 runs queued, 2 already cached" in texts(app)


@pytest.mark.train
def test_experiments_page_draws_curves_and_filters(grid_cache, monkeypatch, tiny_data):
    app = open_page(grid_cache, "pages/3_Experiments.py", monkeypatch, data=tiny_data)
    assert len(app.get("plotly_chart")) == 2
    assert "**6** of 6 runs match" in texts(app)
    app.multiselect(key="exp::slice").set_value(["100%"]).run()
    assert "**2** of 6 runs match" in texts(app)
    table = app.dataframe[0].value  # in words: no run ids or hashes until technical names are asked for
    assert not {"run_id", "fingerprint"} & set(table.columns)
    assert table["experiment"].str.startswith("EfficientNet-Lite0, backbone frozen").all()


@pytest.mark.train
def test_holdout_page_bars_and_threshold_table(grid_cache, monkeypatch, tiny_data):
    app = open_page(grid_cache, "pages/4_Holdout.py", monkeypatch, data=tiny_data)
    assert len(app.get("plotly_chart")) == 1  # the bars
    assert "cannot be told apart" in texts(app), "3 holdout images cannot separate 1/class from 100%"
    table = app.table[0].value
    assert table["training data"].tolist() == ["1 per class", "3 per class", "10 per class (100%)"]
    assert {
        "accuracy",
        "right and over 50% sure",
        "right and over 80% sure",
        "decided alone (at least 80% sure)",
        "accuracy of those decided alone",
    } <= set(table.columns)
    assert not {"dataset", "experiment"} & set(table.columns), "one experiment: named once, above"
    app.slider(key="hold_threshold").set_value(60).run()
    assert "decided alone (at least 60% sure)" in app.table[0].value.columns


@pytest.mark.train
def test_holdout_page_shows_a_slice_asked_for_by_two_names_once(grid_cache, tmp_path, monkeypatch, tiny_data):
    """ "10/class" of a 10-image pool takes the same images as "100%" (for a sample seed): one bar
    and one row under the name most of its runs carry, as the learning curve counts them."""
    cache = tmp_path / "cache"
    shutil.copytree(grid_cache, cache)
    sweep(quick_run(tiny_data, epochs=3), ["10/class"], [1], cache)
    app = open_page(cache, "pages/4_Holdout.py", monkeypatch, data=tiny_data)
    table = app.table[0].value
    assert table["training data"].tolist() == ["1 per class", "3 per class", "10 per class (100%)"]


@pytest.mark.train
def test_gradcam_page_shows_overlays_for_a_run(grid_cache, monkeypatch, tiny_data):
    app = open_page(grid_cache, "pages/5_Grad-CAM.py", monkeypatch, data=tiny_data)
    app.selectbox(key="cam_which").set_value("all")
    until_drawn(app)  # drawn by the CAM worker, not in the page's thread
    assert not app.exception
    images = app.get("image")
    assert len(images) >= 3  # holdout image, predicted-class map, true-class map
    assert "predicted as" in texts(app)


@pytest.mark.train
def test_a_link_to_a_run_opens_the_run_page_on_its_dataset(grid_cache, monkeypatch, tiny_data, other_data):
    """The Train page links a finished run as /Run?run=ID: opened while another dataset is in
    use, the page switches to the run's dataset and shows that run."""
    run_id = runs.list_runs(grid_cache)[-1].run_id  # not the newest, which the page shows anyway
    app = open_page(grid_cache, None, monkeypatch, data=other_data)
    app.query_params["run"] = run_id
    app.switch_page("pages/11_Run.py").run()
    assert not app.exception, app.exception
    assert app.session_state["dataset"] == str(tiny_data)
    assert [box.value for box in app.selectbox if box.label == "Run"] == [run_id]


@pytest.mark.train
def test_run_page_per_class_test_set_export_and_delete(
    grid_cache, tmp_path, monkeypatch, tiny_data, other_data
):
    """One run in detail: its confusions, scored on another folder (and its mistakes on the
    Grad-CAM page), exported and verified, then deleted."""
    cache = tmp_path / "copy"
    # the CAM worker of the Grad-CAM test may still be clearing its requests: not results, not copied
    shutil.copytree(grid_cache, cache, ignore=shutil.ignore_patterns("requests"))
    app = open_page(cache, "pages/11_Run.py", monkeypatch, data=tiny_data)
    assert len(app.get("plotly_chart")) == 1  # the confusion matrix
    run_id = runs.list_runs(cache)[0].run_id
    app.selectbox(key="run_testset").set_value("another folder…").run()
    app.text_input(key="run_testset_path").set_value(str(other_data)).run()
    app.button(key="run_score::run").click().run()
    assert not app.exception, app.exception
    scored = app.dataframe[-1].value
    assert scored["test set"].tolist() == [other_data.name] and scored["images"].tolist() == [24]
    found = testsets.scored(cache, run_id)[0].scores  # in percent, with what 24 images allow
    e = wilson(found.accuracy * found.n, found.n)
    assert scored["test accuracy"].tolist() == [f"{e.estimate:.0%} ({e.low:.0%} to {e.high:.0%})"]
    app.button(key="run_export").click().run()
    assert "model.onnx: verified on 3 holdout images" in texts(app)
    assert (cache / "exports" / run_id / "model.onnx").exists()
    cam = open_page(cache, "pages/5_Grad-CAM.py", monkeypatch, data=tiny_data)
    cam.selectbox(key="cam_run").set_value(run_id).run()  # the scored run, not the page's default
    sources = next(r for r in cam.radio if r.key.startswith("cam_source::"))
    assert sources.options[1] == f"test set {other_data.name}"
    sources.set_value(testsets.scored(cache, run_id)[0].fingerprint)
    cam.selectbox(key="cam_which").set_value("all")
    until_drawn(cam)
    assert not cam.exception and "predicted as" in texts(cam)
    assert len(cam.get("image")) >= 3 * 3, "the test set's images, each with its two maps"
    app.button(key="run_delete_run").click().run()
    assert run_id not in {s.run_id for s in runs.list_runs(cache)}


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({}, "Runs train on this machine: heads on the same features together, other runs one at a time."),
        (
            {"HMD_EXECUTOR": "ray", "HMD_RAY_ADDRESS": "head.example:6379"},
            "Runs train on the Ray cluster at head.example:6379, all waiting runs at once",
        ),
    ],
)
def test_the_train_page_says_where_runs_train(cache_dir, monkeypatch, tiny_data, env, said):
    for name in ("HMD_EXECUTOR", "HMD_RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = open_page(cache_dir, "pages/2_Train.py", monkeypatch, data=tiny_data)
    assert not app.exception
    assert any(said in caption.value for caption in app.caption)


def test_the_train_page_names_a_wrong_executor_setting(cache_dir, monkeypatch, tiny_data):
    monkeypatch.setenv("HMD_EXECUTOR", "spark")
    app = open_page(cache_dir, "pages/2_Train.py", monkeypatch, data=tiny_data)
    assert not app.exception
    assert any("HMD_EXECUTOR" in error.value and "spark" in error.value for error in app.error)


def test_runs_training_together_beyond_two_are_rows_of_one_table_and_a_cancelled_one_says_so(
    cache_dir, monkeypatch, tiny_data
):
    # as if a busy worker had taken five heads off the queue to train them together
    with try_lock(cache_dir / "jobs" / "worker.lock"):
        slices = ("1/class", "2/class", "3/class", "4/class", "5/class")
        queued = jobs.submit(cache_dir, [quick_run(tiny_data, slice=s) for s in slices], start_worker=False)
        while jobs._next(cache_dir) is not None:
            pass
        jobs.cancel(cache_dir, queued[3].id)
        app = open_page(cache_dir, "pages/2_Train.py", monkeypatch, data=tiny_data)
        assert not app.exception
        assert texts(app).count("Training") >= 2, "the first two with their live panels"
        assert "Also training: 3 runs" in texts(app)
        table = next(frame.value for frame in app.dataframe if "progress" in frame.value.columns)
        assert list(table["slice"]) == ["3/class", "4/class", "5/class"]
        assert table.set_index("slice").at["4/class", "now"].startswith("cancelled, recorded when")
    assert not (cache_dir / "jobs" / "worker.log").exists(), "no worker was started"
