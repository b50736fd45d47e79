"""Typed results of the commands whose answer has no record type of its own elsewhere in
``core``: each ``to_dict()`` is that command's ``--json`` contract, defined here once, and the
printer for people reads the same fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.engine.export import ModelCard
    from core.store.doctor import Finding


@dataclass(frozen=True)
class CamFiles:
    """``cam``: the overlays written for a run."""

    run_id: str
    method: str
    files: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "method": self.method, "files": list(self.files)}


@dataclass(frozen=True)
class Backbone:
    """``backbones``: one backbone, and whether its pretrained weights are on this machine."""

    name: str
    default_size: int
    weights: str
    pretrained_available: bool
    cam_layer: str
    description: str

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "default_size": self.default_size,
            "weights": self.weights,
            "pretrained_available": self.pretrained_available,
            "cam_layer": self.cam_layer,
            "description": self.description,
        }

    def readiness(self) -> str:
        if self.pretrained_available:
            return "ready"
        return "download on first use" if self.weights == "download" else "scratch only"


@dataclass(frozen=True)
class TableWritten:
    """``runs --format``: the run table written to a file."""

    out: str
    runs: int
    format: str

    def to_dict(self) -> dict:
        return {"out": self.out, "runs": self.runs, "format": self.format}


@dataclass(frozen=True)
class DoctorReport:
    """``doctor``: what the cache check found, and what ``--fix`` repaired."""

    cache: str
    findings: tuple[Finding, ...]
    repaired: tuple[Finding, ...]

    def to_dict(self) -> dict:
        return {
            "cache": self.cache,
            "findings": [f.to_dict() for f in self.findings],
            "repaired": [f.to_dict() for f in self.repaired],
        }


@dataclass(frozen=True)
class ReportWritten:
    """``report``: the HTML report, and the PDF where ``--pdf`` asked for one."""

    out: str
    bytes: int
    pdf: str | None = None
    pdf_pages: int | None = None

    def to_dict(self) -> dict:
        written = {"out": self.out, "bytes": self.bytes}
        return written if self.pdf is None else {**written, "pdf": self.pdf, "pdf_pages": self.pdf_pages}


@dataclass(frozen=True)
class Exported:
    """``export``: the model card, where the network and the card were written."""

    card: ModelCard
    out: str
    card_path: str

    def to_dict(self) -> dict:
        return {**self.card.to_dict(), "out": self.out, "card": self.card_path}


@dataclass(frozen=True)
class WorkDone:
    """``worker`` and ``cam-worker``: how many queued jobs (or CAM requests) were done."""

    count: int
    key: str  # "trained" or "drawn": the contract's name for the count

    def to_dict(self) -> dict:
        return {self.key: self.count}
