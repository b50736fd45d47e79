"""Pages under Streamlit's AppTest, as the page tests open and read them."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.base.paths import PROJECT_ROOT, write_json

TEXT_KINDS = ("markdown", "info", "success", "warning", "error", "caption")


def open_page(
    cache: Path, page: str | None, monkeypatch, data: Path | None = None, timeout: float = 180
) -> AppTest:
    """``page`` (a path under pages/, or None for Home) on ``cache``, with ``data`` as the
    dataset in use when given; fails on any exception the page shows."""
    monkeypatch.setenv("HMD_CACHE", str(cache))
    if data is not None:
        write_json(cache / "ui.json", {"dataset": str(data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=timeout).run()
    if page:
        app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    """Every piece of text the page shows, one element a line."""
    return "\n".join(str(e.value) for kind in TEXT_KINDS for e in getattr(app, kind))
