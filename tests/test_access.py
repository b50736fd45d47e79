"""Who may write, decided in one place (core/serving/access.py) and enforced in another, below
every page (the write switch in core/base/paths.py): the policy, the roles file, the switch per
thread, and a viewer's launch refused below the Train page even with the button forced."""

from __future__ import annotations

import threading

import pytest

from core.base.errors import ReadOnly, UserError
from core.base.paths import check_writable, read_only, read_only_reason, write_atomic, write_json
from core.serving import access, jobs
from core.serving.access import Role

ROLES = access.parse_roles(
    "# who = role\nalice@example.com = editor\nBob@Example.com = viewer  # a note\ngroup:ml = editor\n",
    "roles.txt",
)


def test_loopback_without_sign_in_edits_as_before():
    for address in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        found = access.decide(address, False, None, [], access.Roles())
        assert found.can_write and found.role is Role.EDITOR and found.why_read_only is None


@pytest.mark.parametrize("address", ["0.0.0.0", "", None, "192.168.1.5", "myhost"])
def test_beyond_loopback_without_sign_in_is_read_only_and_says_why_in_one_line(address):
    found = access.decide(address, False, None, [], ROLES)
    assert not found.can_write and found.role is Role.VIEWER and found.shared
    assert "without sign-in" in found.why_read_only and "\n" not in found.why_read_only


def test_signed_in_roles_by_email_then_group_then_default():
    def role(email, groups=(), roles=ROLES):
        return access.decide("0.0.0.0", True, email, groups, roles).role

    assert role("alice@example.com") is Role.EDITOR
    assert role("BOB@example.com") is Role.VIEWER  # emails compare in lower case
    assert role("carol@example.com", ["ml"]) is Role.EDITOR
    assert role("carol@example.com") is None  # not in the file: refused
    assert role(None) is None  # signed out
    anyone = access.parse_roles("* = viewer\n", "r")
    assert role("carol@example.com", roles=anyone) is Role.VIEWER


def test_an_email_the_provider_has_not_verified_earns_no_role():
    unverified = access.decide("0.0.0.0", True, "alice@example.com", [], ROLES, email_verified=False)
    assert unverified.role is None and not unverified.can_write
    assert "has not verified alice@example.com" in unverified.why_read_only
    verified = access.decide("0.0.0.0", True, "alice@example.com", [], ROLES, email_verified=True)
    assert verified.role is Role.EDITOR  # as when the provider does not say


def test_a_refused_or_viewer_session_cannot_write_and_an_editor_can():
    viewer = access.decide("0.0.0.0", True, "bob@example.com", [], ROLES)
    editor = access.decide("0.0.0.0", True, "alice@example.com", [], ROLES)
    refused = access.decide("0.0.0.0", True, "eve@example.com", [], ROLES)
    assert not viewer.can_write and "viewer" in viewer.why_read_only
    assert editor.can_write and access.write_switch(editor) is None
    assert not refused.can_write and "not in the roles file" in refused.why_read_only


@pytest.mark.parametrize(
    ("text", "line"),
    [("alice@example.com = editor\nbob@example.com editor\n", 2), ("\n\n# c\nx@y = admin\n", 4),
     ("group: = viewer\n", 1), ("not an email = viewer\n", 1)],
)  # fmt: skip
def test_a_malformed_roles_file_names_the_file_and_the_line(tmp_path, text, line):
    path = tmp_path / "roles.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=rf"^{path} line {line}: ") as caught:
        access.load_roles(path)
    assert "\n" not in str(caught.value)


def test_the_roles_file_comes_from_HMD_ROLES_and_a_missing_one_names_nobody(tmp_path, monkeypatch):
    monkeypatch.setenv("HMD_ROLES", str(tmp_path / "none.txt"))
    assert access.load_roles().role_of("alice@example.com") is None
    (tmp_path / "roles.txt").write_text("alice@example.com = editor\n")
    monkeypatch.setenv("HMD_ROLES", str(tmp_path / "roles.txt"))
    assert access.load_roles().role_of("alice@example.com") is Role.EDITOR


def test_the_switch_refuses_every_write_primitive_and_skips_derived_caches(tmp_path):
    with read_only("a viewer"):
        with pytest.raises(ReadOnly, match="^read-only: a viewer$"):
            write_json(tmp_path / "a.json", {})
        with pytest.raises(ReadOnly):
            write_atomic(tmp_path / "b", b"x")
        with pytest.raises(ReadOnly):
            check_writable()
        assert write_json(tmp_path / "scan.json", {}, derived=True) is False
    assert not list(tmp_path.iterdir())
    assert write_json(tmp_path / "a.json", {}) is True  # the switch is back off after the block


def test_the_switch_is_per_thread_as_streamlit_runs_each_script_run(tmp_path):
    """One session's read-only run must not make another's writable or the other way round."""
    seen: dict[str, str | None] = {}
    inside = threading.Barrier(2)

    def run(name: str, reason: str | None) -> None:
        with read_only(reason):
            inside.wait(timeout=10)  # both runs hold their switch at the same time
            seen[name] = read_only_reason()

    threads = [threading.Thread(target=run, args=args) for args in (("viewer", "v"), ("editor", None))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"viewer": "v", "editor": None}
    assert read_only_reason() is None  # this thread never changed


def test_a_viewer_cannot_queue_runs_through_core(tiny_data, cache_dir):
    from core.store.config import RunConfig

    viewer = access.decide("0.0.0.0", True, "bob@example.com", [], ROLES)
    with access.applied(viewer), pytest.raises(ReadOnly, match="bob@example.com is a viewer"):
        jobs.submit(
            cache_dir, [RunConfig(str(tiny_data), "efficientnet_lite0", "frozen", "5%")], start_worker=False
        )
    assert jobs.list_jobs(cache_dir) == []


def test_typed_paths_on_a_shared_server_stay_under_the_roots(tmp_path):
    inside, outside = tmp_path / "data" / "set", tmp_path / "elsewhere"
    local = access.decide("127.0.0.1", False, None, [], ROLES)
    shared = access.decide("0.0.0.0", True, "alice@example.com", [], ROLES)
    viewer = access.decide("0.0.0.0", True, "bob@example.com", [], ROLES)
    assert access.check_typed_path(local, outside) == outside.resolve()  # one user, own machine
    assert access.check_typed_path(shared, inside, (tmp_path / "data",)) == inside.resolve()
    with pytest.raises(UserError, match="outside the dataset folders"):
        access.check_typed_path(shared, outside, (tmp_path / "data",))
    with pytest.raises(UserError, match="outside the dataset folders .*HMD_DATA_ROOTS"):
        access.check_typed_path(shared, inside, ())
    with pytest.raises(UserError, match="^read-only: .*for editors"):
        access.check_typed_path(viewer, inside, (tmp_path / "data",))


@pytest.fixture
def shared_without_sign_in(monkeypatch):
    """The pages as served beyond this machine (``--server.address 0.0.0.0``) without sign-in."""
    from pages.common import signin

    monkeypatch.setattr(signin, "server_address", lambda: "0.0.0.0")


def test_a_viewers_forced_launch_is_refused_below_the_train_page(
    cache_dir, monkeypatch, tiny_data, shared_without_sign_in
):
    from core.base.locks import try_lock
    from pages.common import signin
    from tests.apptest import open_page, texts

    with try_lock(cache_dir / "jobs" / "worker.lock"):  # as if a worker were busy: nothing trains
        app = open_page(cache_dir, "pages/2_Train.py", monkeypatch, data=tiny_data)
        assert "Read-only: served beyond this machine" in texts(app)
        launch = app.button[0]
        assert launch.label == "Launch" and launch.disabled and launch.help.startswith("Read-only: ")
        # Streamlit drops a forged click on a disabled button; a page that forgot to disable it:
        monkeypatch.setattr(signin, "locked", lambda help_text=None: {})
        app = open_page(cache_dir, "pages/2_Train.py", monkeypatch)
        assert not app.button[0].disabled
        app.button[0].click().run()
    assert not app.exception
    assert any(e.value.startswith("read-only: served beyond this machine") for e in app.error)
    assert jobs.list_jobs(cache_dir) == []


def test_a_viewers_callback_and_dataset_choice_write_nothing(
    cache_dir, monkeypatch, tiny_data, shared_without_sign_in
):
    """A button's callback runs before the page frame of its run: the session's switch holds."""
    from core.base.paths import DEFAULT_DATA
    from pages.common import signin
    from tests.apptest import open_page

    app = open_page(cache_dir, None, monkeypatch, data=tiny_data)
    saved = (cache_dir / "ui.json").read_text()
    assert app.button(key="home_grid").disabled
    monkeypatch.setattr(signin, "locked", lambda help_text=None: {})  # a page that forgot
    app = open_page(cache_dir, None, monkeypatch)
    app.button(key="home_grid").click().run()  # its callback runs before the next run's frame
    assert any(e.value.startswith("read-only: ") for e in app.error)
    assert jobs.list_jobs(cache_dir) == []
    app.selectbox(key=f"dataset_switch::{tiny_data}").set_value(str(DEFAULT_DATA)).run()
    assert app.metric[0].value == DEFAULT_DATA.name  # the session follows the viewer's choice
    assert (cache_dir / "ui.json").read_text() == saved  # and no file changed


def test_a_malformed_roles_file_stops_the_page_and_the_server(cache_dir, monkeypatch, tmp_path):
    from pages.common import signin
    from tests.apptest import open_page

    roles = tmp_path / "roles.txt"
    roles.write_text("alice@example.com = editor\nbob@example.com viewer\n")
    monkeypatch.setenv("HMD_ROLES", str(roles))
    stopped = []
    monkeypatch.setattr(signin, "_stop_server", lambda: stopped.append(True))
    app = open_page(cache_dir, None, monkeypatch)
    assert [e.value for e in app.error] == [
        f"{roles} line 2: 'bob@example.com viewer' is not 'WHO = viewer' or 'WHO = editor' "
        "(WHO: an email, group:NAME or *)"
    ]
    assert stopped == [True] and not app.title and not app.button, "nothing but the error"


def test_a_viewers_data_page_has_no_path_box_or_upload_to_use(
    cache_dir, monkeypatch, tiny_data, shared_without_sign_in
):
    from tests.apptest import open_page

    app = open_page(cache_dir, "pages/1_Data.py", monkeypatch, data=tiny_data)
    assert not app.exception and "36 readable images" in app.subheader[0].value  # scanned in memory
    app.radio(key="data_source").set_value("a folder path").run()
    box = next(box for box in app.text_input if box.label == "Class-folder dataset")
    assert box.disabled and box.help.startswith("Read-only: ")
    app.radio(key="data_source").set_value("upload your own").run()
    assert app.button(key="upload_go").disabled
    assert [path.name for path in cache_dir.iterdir()] == ["ui.json"], "a viewer's pages wrote nothing"


def _files(folder) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in sorted(folder.rglob("*"))}


def test_a_viewer_on_every_page_writes_nothing(cache_dir, monkeypatch, shared_without_sign_in):
    """Every page opened read-only, on cached runs, leaves the cache exactly as it was."""
    import shutil

    from core.base.paths import PROJECT_ROOT
    from core.store import runs
    from tests.apptest import open_page

    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "legacy-runs", runs.runs_dir(cache_dir))
    before = _files(cache_dir)
    pages = sorted(p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "pages").glob("*.py"))
    for page in pages:
        app = open_page(cache_dir, page, monkeypatch)
        switch = next(box for box in app.selectbox if box.key.startswith("dataset_switch::"))
        switch.set_value("/tmp/legacy-data/tiny").run()  # the runs' own dataset (gone: runs are read)
        assert not app.exception, f"{page}: {app.exception}"
    assert _files(cache_dir) == before


def test_derived_caches_are_computed_in_memory_for_a_viewer(tiny_data, cache_dir):
    """A viewer's page still scans and decodes a dataset; it only saves nothing."""
    from core.data.datasets import scan
    from core.data.images import image_array

    with read_only("a viewer"):
        dataset = scan(tiny_data, cache_dir)
        images = image_array(dataset, 32, cache_dir)
    assert images.shape == (36, 32, 32, 3) and images.any()
    assert list(cache_dir.iterdir()) == []
    assert (image_array(scan(tiny_data, cache_dir), 32, cache_dir) == images).all()  # as an editor's
    assert list(cache_dir.iterdir())
