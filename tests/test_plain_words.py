"""Pages name experiments in words a room reads, with the technical label one switch away (they
showed "efficientnet_lite0 · frozen · aug none · 20 ep · 224 px · bs 256 · lr 0.01")."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import budget
from core.base.paths import PROJECT_ROOT, write_json
from core.store.config import RunConfig
from core.store.tables import experiment_label, plain_experiment


def test_an_experiment_in_words_names_backbone_training_augmentation_and_size():
    config = RunConfig(
        data="x",
        backbone="efficientnet_lite0",
        mode="frozen",
        slice="5%",
        aug="none",
        image_size=224,
        solver="lbfgs",
    )
    assert plain_experiment(config) == (
        "EfficientNet-Lite0, backbone frozen, a new head trained, no augmentation, 224 px images"
    )
    adamw = RunConfig(
        data="x",
        backbone="resnet18",
        mode="finetune",
        slice="5%",
        aug="heavy",
        image_size=96,
        solver="adamw",
        epochs=20,
        lr=0.01,
        batch_size=256,
    )
    assert plain_experiment(adamw) == (
        "ResNet-18, backbone fine-tuned, heavy augmentation, 96 px images, 20 epochs at learning rate 0.01 "
        "(batches of 256)"
    )


@pytest.mark.train
def test_the_learning_curve_picker_speaks_words_until_technical_names_are_asked_for(
    curve_cache, curve_data, tmp_path, monkeypatch
):
    cache = shutil.copytree(curve_cache, tmp_path / "cache")
    monkeypatch.setenv("HMD_CACHE", str(cache))
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    config = budget.select(cache, curve_data).summaries[0].config
    words = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180).run()
    words.switch_page("pages/6_Learning_curve.py").run()
    assert words.selectbox(key="curve_experiment").options == [plain_experiment(config)]
    home = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180).run()
    home.toggle(key="technical_names").set_value(True).run()  # the sidebar's switch
    assert home.session_state["technical"] is True
    for page, key in (("6_Learning_curve", "curve_experiment"), ("8_Quiz", "quiz_experiment")):
        app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180)
        app.session_state["technical"] = True  # as the switch left it, on any page
        app.run().switch_page(f"pages/{page}.py").run()
        assert app.selectbox(key=key).options == [experiment_label(config)], page
