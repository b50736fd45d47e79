"""Sign-in end to end, in Chromium, against a real OpenID Connect provider started here
(oidc-provider-mock): signed out, only the sign-in; a viewer sees the numbers and cannot launch;
an editor launches. The secrets and roles files live in the test's temporary folder, passed to
the server with ``--secrets.files`` and ``HMD_ROLES``: the repository is left as it was."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
import urllib.request

import oidc_provider_mock
import pytest
from playwright.sync_api import expect

from core.base.locks import try_lock
from core.base.paths import PROJECT_ROOT
from core.serving import jobs
from core.store import runs
from tests.browser import (
    ARTIFACTS,
    browser_page,
    free_port,
    need_chromium,
    screenshot,
    serve,
    visit,
    wait_rendered,
)

pytestmark = pytest.mark.browser
LEGACY_DATA = "/tmp/legacy-data/tiny"  # the fixture runs' dataset (gone: the pages read the runs)
VIEWER, EDITOR = "viewer@example.com", "editor@example.com"


@pytest.fixture
def provider():
    """A local OpenID Connect provider on a free port: its form lets any subject sign in, with
    the subject as the email."""
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


def _secrets(folder, provider: str, port: int):
    path = folder / "secrets.toml"
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(16)}"\n'
        'client_id = "how-much-data-test"\n'
        'client_secret = "any"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    return path


def _sign_in(page, url: str, email: str) -> None:
    """From the signed-out page through the provider's form, back to the app signed in."""
    visit(page, url, "", "Sign in")
    page.get_by_role("button", name="Sign in").click()
    page.locator('input[name="sub"]').fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.get_by_text(f"Signed in as {email}").wait_for(timeout=60_000)
    wait_rendered(page)


def test_sign_in_viewer_sees_numbers_and_cannot_launch_editor_launches(
    provider, tmp_path, cache_dir, tiny_data
):
    need_chromium()
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "legacy-runs", runs.runs_dir(cache_dir))
    saved = json.dumps({"dataset": str(tiny_data)})  # the editor's launch needs real images
    (cache_dir / "ui.json").write_text(saved)
    (tmp_path / "roles.txt").write_text(f"{VIEWER} = viewer\n{EDITOR} = editor\n")
    port = free_port()
    settings = _secrets(tmp_path, provider, port)
    no_proxy = "localhost,127.0.0.1"  # the server asks the provider directly
    env = {"HMD_ROLES": str(tmp_path / "roles.txt"), "NO_PROXY": no_proxy, "no_proxy": no_proxy}
    served = serve(cache_dir, port=port, args=["--secrets.files", str(settings)], env=env)
    # as if a worker were busy: the editor's launch is queued, nothing trains
    with try_lock(cache_dir / "jobs" / "worker.lock"), served as url, browser_page() as page:
        url = url.replace("127.0.0.1", "localhost")  # the host the redirect URI names
        visit(page, url, "", "Sign in")
        main = page.get_by_test_id("stMain").inner_text()
        assert "Sign in" in main and "Dataset in use" not in page.inner_text("body")
        assert page.get_by_test_id("stPageLink").count() == 0, "no page links before sign-in"
        screenshot(page, "sign-in-signed-out")

        _sign_in(page, url, VIEWER)
        expect(page.get_by_text(f"Signed in as {VIEWER} (viewer)")).to_be_visible()
        visit(page, url, "Holdout", "How accurate")
        picker = page.get_by_role("combobox", name="Dataset in use")  # to the runs' dataset
        picker.click()
        page.get_by_role("option", name="tiny", exact=True).click()
        page.get_by_text("Holdout accuracy by amount of training data").wait_for(timeout=60_000)
        wait_rendered(page)  # the rerun the pick starts replaces the table
        expect(page.get_by_test_id("stTable").first).to_contain_text("10 per class (100%)")
        expect(page.get_by_test_id("stTable").first).to_contain_text("3 of 3")  # the numbers
        assert (cache_dir / "ui.json").read_text() == saved, "a viewer's choice stays in the session"
        visit(page, url, "Train", "Launch")
        expect(page.get_by_role("button", name="Launch")).to_be_disabled()
        expect(page.get_by_text(f"Read-only: {VIEWER} is a viewer")).to_be_visible()
        screenshot(page, "sign-in-viewer-train")
        assert jobs.list_jobs(cache_dir) == []

        editor = page.context.browser.new_context().new_page()  # a second person, own cookies
        _sign_in(editor, url, EDITOR)
        visit(editor, url, "Train", "Launch")
        editor.get_by_role("button", name="Launch").click()
        editor.get_by_text(re.compile(r"\d+ runs? queued")).wait_for(timeout=60_000)
    assert {job.state for job in jobs.list_jobs(cache_dir)} == {"queued"}


def test_a_malformed_roles_file_stops_the_served_app_with_the_line_at_fault(tmp_path, cache_dir):
    need_chromium()
    roles = tmp_path / "roles.txt"
    roles.write_text("# who = role\nbob@example.com viewer\n")
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with serve(cache_dir, env={"HMD_ROLES": str(roles)}) as url, browser_page() as page:
        page.goto(url, wait_until="domcontentloaded")  # the first page run reads the roles file
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the server has stopped
            try:
                direct.open(f"{url}/_stcore/health", timeout=2).read()
            except OSError:
                break
            page.wait_for_timeout(300)
        else:
            raise AssertionError("the server still answers 60 s after reading a malformed roles file")
    log = (ARTIFACTS / f"streamlit-{cache_dir.name}.log").read_text()
    assert f"error: {roles} line 2: 'bob@example.com viewer' is not 'WHO = viewer'" in log
