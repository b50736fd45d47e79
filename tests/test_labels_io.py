"""Labels back from the labelling tool become a new dataset version, never a change to the old
one; a bad labels file is named in one line and writes nothing (issue 23, item 5). Through
``python -m core import-labels`` as other tools call it, on real images; no model is trained."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from core.answers.nextbatch.exports import BatchItem, image_reference, label_config, write_exports
from core.answers.nextbatch.labels_io import RECORD, SOURCE, import_uploaded_labels
from core.base.errors import UserError
from core.base.paths import DEFAULT_DATA
from core.data import upload
from core.data.datasets import scan
from tests.command import core
from tests.conftest import TINY_CLASSES, TINY_PER_CLASS


@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    """The uploads area, in the test's own folder (the CLI runs in this process, where
    ``HMD_UPLOADS`` was read when :mod:`core.data.upload` was imported)."""
    folder = tmp_path / "uploads"
    monkeypatch.setattr(upload, "UPLOADS", folder)
    return folder


@pytest.fixture
def labelled(tmp_path) -> list[tuple[Path, str]]:
    """Six new real images in a nested folder, with their true classes."""
    found = []
    for name in TINY_CLASSES:
        folder = tmp_path / "pool" / "round 1 + 2 & #3" / name.lower()  # characters a URL escapes
        folder.mkdir(parents=True)
        for source in sorted((DEFAULT_DATA / name).iterdir())[300:302]:
            found.append((Path(shutil.copy(source, folder / source.name)), name))
    return found


def manifest(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "rank", "label"])
        writer.writerows([p, rank, label] for rank, (p, label) in enumerate(rows, start=1))
    return path


def import_labels(cache: Path, data: Path, labels: Path, *extra: str):
    return core(cache, "import-labels", "--data", str(data), "--labels", str(labels), *extra, "--json")


def everything(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def test_a_csv_manifest_becomes_a_new_version_beside_the_untouched_old_one(
    tiny_data, labelled, uploads, cache_dir, tmp_path
):
    before = everything(tiny_data)
    rows = [(str(p), label) for p, label in labelled]
    rows[0] = (str(labelled[0][0].relative_to(tmp_path)), labelled[0][1])  # relative to the manifest
    rows.append((str(tmp_path / "pool" / "not labelled yet.png"), ""))
    done = import_labels(cache_dir, tiny_data, manifest(tmp_path / "labels.csv", rows))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["dataset"] == str(uploads / f"{tiny_data.name}-v2")
    assert result["counts"] == {name: TINY_PER_CLASS + 2 for name in sorted(TINY_CLASSES)}
    assert result["added"] == {name: 2 for name in sorted(TINY_CLASSES)} and result["unlabelled"] == 1
    version = Path(result["dataset"])
    assert {p.name for p in (version / "Bag").iterdir()} >= {p.name for p, c in labelled if c == "Bag"}
    assert scan(version, cache_dir).counts() == result["counts"]  # a dataset like any other, record beside
    record = json.loads((version / RECORD).read_text())
    assert record["labels"] == str(tmp_path / "labels.csv") and record["parent"] == str(tiny_data)
    assert record["imported"][:4].isdigit()
    assert everything(tiny_data) == before

    again = json.loads(import_labels(cache_dir, tiny_data, tmp_path / "labels.csv").stdout)
    assert again["name"] == f"{tiny_data.name}-v3"  # a new name each time, nothing overwritten
    taken = import_labels(cache_dir, tiny_data, tmp_path / "labels.csv", "--name", again["name"])
    assert taken.returncode == 2 and "already exists" in taken.stderr


def test_a_label_studio_export_becomes_a_new_version(tiny_data, labelled, uploads, cache_dir, tmp_path):
    from label_studio_sdk.label_interface import LabelInterface

    def annotation(label: str, cancelled: bool = False) -> dict:
        choice = {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}
        return {"id": 1, "result": [choice], "was_cancelled": cancelled}

    tasks = [
        {
            "id": i,
            "data": {"image": image_reference(str(p))},
            "annotations": [annotation(c)],
        }
        for i, (p, c) in enumerate(labelled, start=1)
    ]
    tasks[0]["data"]["path"] = str(labelled[0][0])
    tasks[1]["annotations"] = [annotation("Bag", cancelled=True)]  # skipped: no kept annotation
    interface = LabelInterface(label_config(TINY_CLASSES))
    assert all(interface.validate_annotation(a) for t in tasks for a in t["annotations"])
    export = tmp_path / "project-1-export.json"
    export.write_text(json.dumps(tasks))
    done = import_labels(cache_dir, tiny_data, export, "--name", "round 1")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["dataset"] == str(uploads / "round 1") and result["unlabelled"] == 1
    assert sum(result["added"].values()) == len(labelled) - 1


@pytest.mark.parametrize(
    ("mistake", "named"),
    [
        ("unknown path", "unknown path"),
        ("unknown class", "unknown class 'Cat'"),
        ("duplicate row", "duplicate row: row 4 repeats row 2"),
    ],
)
def test_a_bad_labels_file_is_named_in_one_line_and_writes_nothing(
    mistake, named, tiny_data, labelled, uploads, cache_dir, tmp_path
):
    rows = [(str(p), label) for p, label in labelled[:2]]
    rows.append(
        {
            "unknown path": (str(tmp_path / "gone.png"), "Bag"),
            "unknown class": (str(labelled[2][0]), "Cat"),
            "duplicate row": rows[0],
        }[mistake]
    )
    uploads.mkdir()
    done = import_labels(cache_dir, tiny_data, manifest(tmp_path / "labels.csv", rows))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and named in done.stderr and "nothing was written" in done.stderr
    assert everything(uploads) == []


def test_the_exported_batch_comes_back_once_labelled(tiny_data, labelled, uploads, cache_dir, tmp_path):
    """The batch CSV with a ``label`` column added, and the Label Studio tasks once annotated
    (each suggestion accepted), both read back to the same new images."""
    items = [
        BatchItem(str(path), rank, 1.0 / rank, label, 0.9, "uncertain")
        for rank, (path, label) in enumerate(labelled, 1)
    ]
    written = write_exports(items, TINY_CLASSES, "hybrid", tmp_path / "batch.csv", tmp_path / "tasks.json")
    with open(written[0], newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(tmp_path / "labelled.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, [*rows[0], "label"])
        writer.writeheader()
        writer.writerows({**row, "label": row["suggested"]} for row in rows)
    tasks = json.loads(written[1].read_text())
    for task in tasks:  # what Label Studio exports once a labeller accepts the pre-annotation
        task["annotations"] = [{"result": task.pop("predictions")[0]["result"], "was_cancelled": False}]
        del task["data"]["path"]  # read back from the local-files reference alone
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    added = {
        name: json.loads(import_labels(cache_dir, tiny_data, tmp_path / name).stdout)["added"]
        for name in ("labelled.csv", "export.json")
    }
    assert added["labelled.csv"] == added["export.json"] == {name: 2 for name in sorted(TINY_CLASSES)}


def test_an_uploaded_file_reads_its_paths_against_the_pool_and_is_kept_in_the_version(
    tiny_data, labelled, cache_dir, tmp_path, monkeypatch
):
    pool, uploads = tmp_path / "pool", tmp_path / "uploads"
    monkeypatch.setattr(upload, "UPLOADS", uploads)
    rows = [f"{p.relative_to(pool)},{label}" for p, label in labelled]
    content = "\n".join(["path,label", *rows]).encode()
    bad = b"path,label\n" + str(labelled[0][0].relative_to(pool)).encode() + b",Sock\n"
    with pytest.raises(UserError, match=r"^labels\.csv: row 2: unknown class 'Sock'"):
        import_uploaded_labels(tiny_data, "labels.csv", bad, cache_dir, pool)
    assert not uploads.exists(), "nothing written for an invalid file"

    done = import_uploaded_labels(tiny_data, "labels.csv", content, cache_dir, pool, "round-1")
    assert done.dataset == uploads / "round-1"
    assert done.added == {name: 2 for name in sorted(TINY_CLASSES)}
    assert (done.dataset / f"{SOURCE}.csv").read_bytes() == content
