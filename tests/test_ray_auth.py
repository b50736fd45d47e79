"""A Ray cluster started as the README says, by ``ray start``, on a machine whose user has a Ray
token (``ray get-auth-token --generate`` writes it to ``~/.ray/auth_token``): since Ray 2.59
the cluster then asks for it. The CLI joins it with ``--address``, though Ray's own driver
sends a token to an explicit address only when told to. Its own module: this head runs alone,
after the other Ray tests' cluster is gone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.serving.ray_executor import recorded_cluster_file
from core.store import runs
from tests.browser import free_port
from tests.command import core_process

TOKEN = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def _start_head(home: Path, address: str) -> subprocess.Popen:
    """``ray start --head --block`` as a user whose home is ``home``, holding a token; returns
    once it listens."""
    host, port = address.rsplit(":", 1)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_AUTH")}
    ray = Path(sys.executable).with_name("ray")
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(TOKEN)
    head = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={port}", f"--node-ip-address={host}"]
        + ["--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"],
        env={**env, "HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not _listens(host, int(port)):
        assert head.poll() is None and time.monotonic() < deadline, "ray start did not come up"
        time.sleep(0.2)
    return head


def _stop_head(head: subprocess.Popen) -> None:
    """Stop the head and every process it started (one session: ``start_new_session``). Ray's
    graceful stop of a head takes over 30 s here, mostly waiting; its processes get 5 s after
    SIGTERM, then SIGKILL."""
    os.killpg(head.pid, signal.SIGTERM)  # --block stops the head's processes with it
    try:
        head.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(10)
    deadline = time.monotonic() + 10
    while _in_session(head.pid):
        assert time.monotonic() < deadline, f"processes of the head's session left: {_in_session(head.pid)}"
        time.sleep(0.1)


def _in_session(sid: int) -> list[str]:
    """The live processes of session ``sid`` (zombies, already dead, left out)."""
    found = subprocess.run(["ps", "-eo", "sid=,stat=,args="], capture_output=True, text=True, check=True)
    rows = (line.split(None, 2) for line in found.stdout.splitlines())
    return [args for owner, stat, args in rows if owner == str(sid) and not stat.startswith("Z")]


def _listens(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.train
def test_a_cluster_started_by_ray_start_asks_for_a_token_and_is_joined(
    tiny_data, cache_dir, tmp_path, monkeypatch
):
    from ray.util import get_node_ip_address

    home = tmp_path / "home"
    address = f"{get_node_ip_address()}:{free_port()}"
    head = _start_head(home, address)
    try:
        for variable in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv("HOME", str(home))  # the user who ran `ray start` on this machine
        grid = ["--data", str(tiny_data), "--slices", "1/class", "--seeds", "1", "--image-size", "64"]
        done = core_process(
            cache_dir, "sweep", *grid, "--epochs", "2", "--executor", "ray", "--address", address, "--json"
        )
    finally:
        _stop_head(head)
        # `ray start` records its head in Ray's temporary folder (the test session's own, see
        # conftest.ray_temp), which a later `ray.init()` without an address would try to join
        recorded_cluster_file().unlink(missing_ok=True)
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(done.stdout)
    assert runs.is_complete(cache_dir, record["run_id"]), "trained on the cluster, committed"
