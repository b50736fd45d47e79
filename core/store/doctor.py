"""``python -m core doctor``: what in the cache cannot be trusted or was left behind, and the repair.

It finds damaged runs (files that do not match what was written at commit), leftover partial
runs (interrupted, failed or cancelled, with no live process), stale temporary files of killed
writers, damaged cached arrays, stale cancel requests, and what was moved to the quarantine
earlier. ``--fix`` moves damaged runs and leftover partials to ``cache/quarantine/`` (nothing
is deleted but derived data: temporary files, damaged cached arrays and cancel requests).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from core.base.paths import check_writable, human_bytes, load_npy, quarantine, stale_temporaries
from core.base.words import counted
from core.store import runs

KINDS = {
    "damaged_run": "damaged run (its files do not match what was written when it finished)",
    "leftover_partial": "leftover partial run (interrupted, failed or cancelled; no process owns it)",
    "stale_temporary": "temporary file of a killed writer",
    "damaged_array": "damaged cached array (rebuilt when next needed)",
    "stale_cancel": "cancel request for a run that is not training",
    "quarantined": "set aside earlier (look, then delete by hand)",
}
REPAIRS = {
    "damaged_run": "moved to quarantine",
    "leftover_partial": "moved to quarantine",
    "stale_temporary": "deleted",
    "damaged_array": "deleted",
    "stale_cancel": "deleted",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # a key of KINDS
    path: str
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def check(cache_dir: Path, deep: bool = True) -> list[Finding]:
    """Everything worth a person's attention in the cache. ``deep`` also compares every run
    file's checksum and opens every cached array (seconds on a large cache); without it the
    check is quick enough for a page load."""
    return [
        *_runs(cache_dir, deep),
        *_partials(cache_dir),
        *[
            Finding("stale_temporary", str(p), human_bytes(p.stat().st_size))
            for p in stale_temporaries(cache_dir)
            if p.exists()
        ],
        *(_arrays(cache_dir) if deep else []),
        *_quarantined(cache_dir),
    ]


def _runs(cache_dir: Path, deep: bool) -> list[Finding]:
    found = []
    for rid, reason in runs.scan_runs(cache_dir).damaged.items():
        found.append(Finding("damaged_run", str(runs.complete_dir(cache_dir, rid).path), reason))
    if deep:
        for summary in runs.list_runs(cache_dir):
            folder = runs.complete_dir(cache_dir, summary.run_id)
            reason = runs.problem(folder, deep=True)
            if reason:
                found.append(Finding("damaged_run", str(folder.path), reason))
    return found


def _partials(cache_dir: Path) -> list[Finding]:
    root = runs.runs_dir(cache_dir) / ".partial"
    if not root.exists():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if path.is_dir():
            state = runs.run_state(cache_dir, path.name)
            if state != "running":
                found.append(Finding("leftover_partial", str(path), state))
        elif path.suffix == ".cancel" and not runs.is_locked(cache_dir, path.stem):
            found.append(Finding("stale_cancel", str(path), "no process is training this run"))
    return found


def _arrays(cache_dir: Path) -> list[Finding]:
    found = []
    for folder in ("images", "features"):
        for path in sorted((cache_dir / folder).glob("*.npy")):
            if _damaged_array(path):
                found.append(Finding("damaged_array", str(path), "truncated or unreadable"))
    return found


def _damaged_array(path: Path) -> bool:
    """Whether numpy cannot map the file (checked without the repair :func:`load_npy` does)."""
    import numpy as np

    try:
        np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return True
    return False


def _quarantined(cache_dir: Path) -> list[Finding]:
    root = cache_dir / "quarantine"
    found = []
    for stamp in sorted(root.iterdir()) if root.exists() else []:
        files = [p for p in stamp.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        what = f"{counted(len(files), 'file')}, {human_bytes(size)}"
        found.append(Finding("quarantined", str(stamp), what))
    return found


def fix(cache_dir: Path, findings: list[Finding]) -> list[Finding]:
    """Repair what :func:`check` found (see :data:`REPAIRS`); returns what was repaired."""
    check_writable()
    repaired = []
    for finding in findings:
        path = Path(finding.path)
        if finding.kind not in REPAIRS or not path.exists():
            continue
        if REPAIRS[finding.kind] == "deleted":
            if finding.kind == "damaged_array":
                load_npy(path)  # removes it, saying why
            path.unlink(missing_ok=True)
        else:
            quarantine(cache_dir, path)
        repaired.append(finding)
    return repaired


def headline(findings: list[Finding]) -> str | None:
    """One line for the Home page, or ``None`` when nothing needs attention."""
    counts: dict[str, int] = {}
    for finding in findings:
        if finding.kind != "quarantined":
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
    if not counts:
        return None
    parts = [f"{n} {KINDS[kind].split(' (')[0]}{'s' if n > 1 else ''}" for kind, n in counts.items()]
    return "The cache needs attention: " + ", ".join(parts) + ". Run `python -m core doctor --fix`."
