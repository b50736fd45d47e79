"""The README's backtest chart, drawn from the stored result of ``python -m bench.nextbatch``:
``python -m bench.nextbatch_chart`` reads ``bench/results/nextbatch.json``, rebuilds the
simulation from it (every number and the verdict recomputed, not trusted), draws the Next batch
page's own figure and saves it with Chromium as ``bench/results/nextbatch.png``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from core.answers.nextbatch.simulate import Simulation
from core.present.figures import next_batch_backtest

RESULTS = Path(__file__).parent / "results"
SIZE = (1100, 480)


def main() -> None:
    from playwright.sync_api import sync_playwright

    found = Simulation.from_dict(json.loads((RESULTS / "nextbatch.json").read_text()))
    figure = next_batch_backtest(found)
    figure.update_layout(width=SIZE[0], height=SIZE[1], title=found.verdict(), title_font_size=13)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        page_file = Path(folder) / "chart.html"
        page_file.write_text(figure.to_html(include_plotlyjs=True, full_html=True))
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": SIZE[0] + 40, "height": SIZE[1] + 40})
        page.goto(page_file.as_uri())
        page.locator(".js-plotly-plot .main-svg").first.wait_for()
        page.locator(".js-plotly-plot").first.screenshot(path=str(RESULTS / "nextbatch.png"))
        browser.close()
    print(f"wrote {RESULTS / 'nextbatch.png'}: {found.verdict()}")


if __name__ == "__main__":
    main()
