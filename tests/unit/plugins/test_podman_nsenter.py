"""The lab's connection (plugins/connection/podman_nsenter.py) with a stand-in podman and
nsenter on PATH: the stand-in nsenter logs its arguments and runs the command after `--`
on this machine, so what the plugin asks for (target PID, environment, stdin) is seen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

ROOT = Path(__file__).resolve().parents[3]
connection_loader.add_directory(str(ROOT / "plugins/connection"))


@pytest.fixture()
def box(tmp_path: Path, monkeypatch):
    """A 'container' whose first process is a sleeping child of this test."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    state = {"pid": sleeper.pid, "inspects": 0}
    (tmp_path / "state.json").write_text(json.dumps(state))
    (bindir / "podman").write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys
        state = json.load(open({str(tmp_path / "state.json")!r}))
        state["inspects"] += 1
        json.dump(state, open({str(tmp_path / "state.json")!r}, "w"))
        assert sys.argv[1:5] == ["inspect", "--type", "container", "--format"], sys.argv
        if sys.argv[-1] != "box":
            sys.exit("Error: no such container " + sys.argv[-1])
        print(json.dumps([{{"State": {{"Pid": state["pid"], "Running": True}},
                            "Config": {{"Env": ["PATH=/usr/bin:/bin", "container=podman"]}}}}]))
        """)
    )
    (bindir / "nsenter").write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        echo "$*" >> {tmp_path / "nsenter.log"}
        if ! [ -d "/proc/$2" ]; then echo "nsenter: cannot open /proc/$2/ns/ipc" >&2; exit 1; fi
        shift 4
        exec "$@"
        """)
    )
    for tool in bindir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    yield tmp_path, sleeper
    sleeper.kill()
    sleeper.wait()


def connect(tmp_path: Path, name: str = "box"):
    conn = connection_loader.get("podman_nsenter", PlayContext(), None)
    conn.set_options(direct={"remote_addr": name, "cache_dir": str(tmp_path / "cache")})
    return conn


def inspects(tmp_path: Path) -> int:
    return json.loads((tmp_path / "state.json").read_text())["inspects"]


def nsenter_calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "nsenter.log").read_text().splitlines()


@pytest.mark.skipif(os.geteuid() != 0, reason="the plugin refuses to run without root")
def test_commands_run_with_the_containers_pid_and_environment_only(box, monkeypatch) -> None:
    tmp_path, sleeper = box
    monkeypatch.setenv("NAZBENCH_CONTROLLER_SECRET", "x")
    conn = connect(tmp_path)
    rc, out, err = conn.exec_command("env; echo ---; cat", in_data=b"module source on stdin")
    assert (rc, err) == (0, b"")
    env, stdin = out.decode().split("---\n")
    # the container's variables and the shell's own PWD, nothing of the controller's
    names = {line.split("=")[0] for line in env.splitlines()}
    assert names - {"PWD"} == {"PATH", "container"}
    assert "PATH=/usr/bin:/bin" in env.splitlines()
    assert stdin == "module source on stdin"  # pipelining: the module arrives on stdin
    assert nsenter_calls(tmp_path) == [
        f"--target {sleeper.pid} --all -- /usr/bin/env -i PATH=/usr/bin:/bin container=podman"
        " /bin/sh -c env; echo ---; cat"
    ]
    assert conn.is_pipelining_enabled()


@pytest.mark.skipif(os.geteuid() != 0, reason="the plugin refuses to run without root")
def test_one_inspect_per_container_start_not_per_task(box) -> None:
    tmp_path, _ = box
    for _ in range(3):  # Ansible makes a new connection for every task
        assert connect(tmp_path).exec_command("true")[0] == 0
    assert inspects(tmp_path) == 1
    # the container restarted: a new first process, the cached PID is gone
    replacement = subprocess.Popen(["sleep", "60"])
    try:
        state = json.loads((tmp_path / "state.json").read_text())
        (tmp_path / "state.json").write_text(json.dumps({**state, "pid": replacement.pid}))
        box[1].kill()
        box[1].wait()
        assert connect(tmp_path).exec_command("true")[0] == 0
        assert inspects(tmp_path) == 2
        assert nsenter_calls(tmp_path)[-1].startswith(f"--target {replacement.pid} ")
    finally:
        replacement.kill()
        replacement.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="the plugin refuses to run without root")
def test_a_pid_reused_by_another_process_is_not_entered(box) -> None:
    tmp_path, _ = box
    connect(tmp_path).exec_command("true")
    cache = tmp_path / "cache/box.json"
    cached = json.loads(cache.read_text())
    cache.write_text(json.dumps({**cached, "start": str(int(cached["start"]) + 1)}))
    assert connect(tmp_path).exec_command("true")[0] == 0
    assert inspects(tmp_path) == 2  # same PID, other start time: inspected again


@pytest.mark.skipif(os.geteuid() != 0, reason="the plugin refuses to run without root")
def test_put_and_fetch_go_through_the_containers_cat(box) -> None:
    tmp_path, _ = box
    conn = connect(tmp_path)
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    src, dest, back = tmp_path / "src", tmp_path / "dir with space/dest", tmp_path / "back"
    src.write_bytes(payload)
    dest.parent.mkdir()
    conn.put_file(str(src), str(dest))
    assert dest.read_bytes() == payload
    conn.fetch_file(str(dest), str(back))
    assert back.read_bytes() == payload
    assert nsenter_calls(tmp_path)[-2].endswith(f"/bin/sh -c cat > '{dest}'")
    with pytest.raises(Exception, match="failed to fetch"):
        conn.fetch_file(str(tmp_path / "missing"), str(back))


@pytest.mark.skipif(os.geteuid() != 0, reason="the plugin refuses to run without root")
def test_a_missing_container_is_named(box) -> None:
    tmp_path, _ = box
    with pytest.raises(Exception, match="podman inspect nowhere failed: Error: no such container"):
        connect(tmp_path, "nowhere").exec_command("true")


def test_start_time_survives_a_command_name_with_spaces_and_parentheses() -> None:
    module = connection_loader.get("podman_nsenter", PlayContext(), None).__class__.__module__
    stat_start_time = sys.modules[module].stat_start_time
    fields = " ".join(str(n) for n in range(3, 53))  # field 22 is the 20th after the name
    assert stat_start_time(f"4242 (a) (b c) {fields}") == "22"
    own = Path("/proc/self/stat").read_text()
    assert stat_start_time(own) == own.split()[21]


def test_the_lab_and_molecule_use_this_connection() -> None:
    lab = yaml.safe_load((ROOT / "inventories/lab/group_vars/lab.yml").read_text())
    assert lab["ansible_connection"] == "podman_nsenter"
    molecule = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    names = {p["name"] for p in molecule["platforms"]}
    host_vars = molecule["provisioner"]["inventory"]["host_vars"]
    assert {h for h, v in host_vars.items() if v["ansible_connection"] == "podman_nsenter"} == names
    assert molecule["provisioner"]["env"]["ANSIBLE_CONNECTION_PLUGINS"].endswith(
        "/plugins/connection"
    )
