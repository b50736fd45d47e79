"""The batch out to the labelling tool: a CSV a person can sort and fill in, and a Label Studio
import file with the suggested class as a pre-annotation.

The CSV's ``path`` column is absolute, so the same file, with a ``label`` column added, comes
back as a labels manifest (:mod:`core.answers.nextbatch.labels_io`). The Label Studio file is a
list of tasks for an image-classification project (:func:`label_config`): ``data.image`` refers
to the image as Label Studio's local-files storage serves it (run Label Studio with
``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/``),
``data.path`` keeps the file's path so that the export can be read back whatever the storage,
and the suggestion is a ``predictions`` entry with a ``choices`` result, which Label Studio shows
as a pre-filled answer the labeller confirms or changes. At the cold start (no head yet) there
is no suggestion and no prediction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from core.base.paths import write_atomic

CSV_COLUMNS = ("path", "rank", "score", "suggested", "p_suggested", "reason")
# the names a Label Studio result refers to: the labelling config's control and object tags
FROM_NAME = "label"
TO_NAME = "image"
LOCAL_FILES = "/data/local-files/?d="
MODEL_VERSION = "how-much-data"


@dataclass(frozen=True)
class BatchItem:
    """One image of the batch, as exported: best first (``rank`` 1)."""

    path: str  # absolute
    rank: int
    score: float  # the strategy's score: higher is chosen first
    suggested: str | None  # the current head's class; None at the cold start
    p_suggested: float | None  # the head's probability of ``suggested``
    reason: str

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "rank": self.rank,
            "score": self.score,
            "suggested": self.suggested,
            "p_suggested": self.p_suggested,
            "reason": self.reason,
        }


def batch_csv(items: Sequence[BatchItem]) -> bytes:
    """The batch as CSV: one row per image, :data:`CSV_COLUMNS`, empty cells at the cold start."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        row = item.to_dict()
        writer.writerow(["" if row[name] is None else row[name] for name in CSV_COLUMNS])
    return out.getvalue().encode()


def label_config(classes: Sequence[str]) -> str:
    """The Label Studio labelling config the tasks are for: one image, one choice among the
    dataset's classes."""
    choices = "".join(f"\n    <Choice value={quoteattr(name)}/>" for name in classes)
    return (
        f'<View>\n  <Image name="{TO_NAME}" value="$image"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInLine="true">'
        f"{choices}\n  </Choices>\n</View>\n"
    )


def image_reference(path: str) -> str:
    """How Label Studio's local-files storage (document root ``/``) serves the file at ``path``."""
    return LOCAL_FILES + quote(path.lstrip("/"))  # "/" kept; spaces, "+", "&" and "#" escaped


def label_studio_tasks(items: Sequence[BatchItem], strategy: str) -> list[dict]:
    """The batch as Label Studio import tasks, in rank order."""
    tasks = []
    for item in items:
        task: dict = {
            "data": {
                TO_NAME: image_reference(item.path),
                "path": item.path,
                "rank": item.rank,
                "reason": item.reason,
            }
        }
        if item.suggested is not None:
            task["predictions"] = [
                {
                    "model_version": f"{MODEL_VERSION} {strategy}",
                    "score": item.p_suggested,
                    "result": [
                        {
                            "from_name": FROM_NAME,
                            "to_name": TO_NAME,
                            "type": "choices",
                            "value": {"choices": [item.suggested]},
                        }
                    ],
                }
            ]
        tasks.append(task)
    return tasks


def config_path(tasks_path: Path) -> Path:
    """Where the labelling config is written beside the tasks: ``tasks.json`` -> ``tasks.xml``."""
    return tasks_path.with_suffix(".xml")


def write_exports(
    items: Sequence[BatchItem],
    classes: Sequence[str],
    strategy: str,
    csv_path: Path,
    tasks_path: Path | None = None,
) -> tuple[Path, ...]:
    """Write the CSV, and the Label Studio tasks with their labelling config when asked; each
    file whole or not at all. Returns the files written."""
    write_atomic(csv_path, batch_csv(items))
    if tasks_path is None:
        return (csv_path,)
    tasks = json.dumps(label_studio_tasks(items, strategy), indent=1)
    write_atomic(tasks_path, tasks.encode())
    write_atomic(config_path(tasks_path), label_config(classes).encode())
    return csv_path, tasks_path, config_path(tasks_path)
