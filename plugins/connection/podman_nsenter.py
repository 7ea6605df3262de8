# nazbench: reach a lab container by entering its namespaces from the host.
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

DOCUMENTATION = """
name: podman_nsenter
short_description: Run tasks in a local podman container by entering its namespaces
description:
  - Runs each command in the container with C(nsenter) into the namespaces of the
    container's first process, with the container's own environment, and pipes modules
    to Python on stdin (pipelining), so a task is one process on the controller.
  - C(containers.podman.podman) starts C(podman exec) three to five times per task
    (about 180 ms each here); the lab's deploy, molecule and the end-to-end tests run
    thousands of tasks, and most of their time went to those starts.
  - The container's PID and environment come from C(podman inspect) once and are kept in
    O(cache_dir), checked against the process' start time before each use, so a
    restarted container is inspected again.
  - Needs root on the controller and a running rootful podman container; files are
    written and read through the container's own C(cat), so symlinks resolve inside it.
author: nazbench
options:
  remote_addr:
    description: The container's name or ID.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  podman_executable:
    description: The podman binary used to inspect the container.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  cache_dir:
    description: Where each container's PID, start time and environment are kept.
    default: /run/nazbench-podman-nsenter
    vars:
      - name: ansible_podman_nsenter_cache_dir
  pipelining:
    description: Pipe modules to the container's Python (one process per task).
    default: true
    type: boolean
    vars:
      - name: ansible_pipelining
"""

display = Display()


def stat_start_time(stat: str) -> str:
    """Field 22 of a /proc/PID/stat line: the process' start time in clock ticks."""
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return stat[stat.rindex(")") + 2 :].split()[19]


def process_start_time(pid: int) -> str | None:
    """A PID's identity: its start time, or None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat_start_time(stat.read().decode(errors="replace"))
    except OSError:
        return None


class Connection(ConnectionBase):
    """Commands in a podman container through nsenter, modules by pipelining."""

    transport = "podman_nsenter"
    has_pipelining = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._target: dict | None = None

    def _container(self) -> str:
        return to_text(self.get_option("remote_addr"))

    def _cache_path(self) -> str:
        name = self._container().replace("/", "_")
        return os.path.join(self.get_option("cache_dir"), f"{name}.json")

    def _inspect(self) -> dict:
        podman = shutil.which(self.get_option("podman_executable"))
        if podman is None:
            raise AnsibleConnectionFailure(
                f"{self.get_option('podman_executable')} not found on the controller"
            )
        proc = subprocess.run(
            [podman, "inspect", "--type", "container", "--format", "json", self._container()],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise AnsibleConnectionFailure(
                f"podman inspect {self._container()} failed: {to_text(proc.stderr).strip()}"
            )
        info = json.loads(proc.stdout)[0]
        pid = int(info["State"]["Pid"])
        if not info["State"].get("Running") or pid <= 0:
            raise AnsibleConnectionFailure(f"container {self._container()} is not running")
        start = process_start_time(pid)
        if start is None:
            raise AnsibleConnectionFailure(f"container {self._container()}: no process {pid}")
        target = {"pid": pid, "start": start, "env": info["Config"].get("Env") or []}
        cache = self._cache_path()
        os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=os.path.dirname(cache), delete=False, encoding="utf-8"
        ) as out:
            json.dump(target, out)
        os.replace(out.name, cache)
        return target

    def _cached(self) -> dict | None:
        try:
            with open(self._cache_path(), encoding="utf-8") as cached:
                target = json.load(cached)
        except (OSError, ValueError):
            return None
        if process_start_time(target.get("pid", 0)) != target.get("start"):
            return None  # the container restarted (or stopped): its PID is someone else's
        return target

    def _connect(self) -> Connection:
        if os.geteuid() != 0:
            raise AnsibleConnectionFailure(
                "podman_nsenter needs root on the controller (nsenter into a rootful container)"
            )
        if not self._connected:
            self._target = self._cached() or self._inspect()
            display.vvv(
                f"NSENTER into {self._container()} (pid {self._target['pid']})",
                host=self._container(),
            )
            self._connected = True
        return self

    def _argv(self, command: str) -> list[str]:
        assert self._target is not None
        return [
            "nsenter", "--target", str(self._target["pid"]), "--all", "--",
            "/usr/bin/env", "-i", *self._target["env"], "/bin/sh", "-c", command,
        ]  # fmt: skip

    def _run(self, command: str, stdin, in_data: bytes | None = None):
        for attempt in (1, 2):
            proc = subprocess.Popen(
                self._argv(command), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            stdout, stderr = proc.communicate(in_data)
            # nsenter's own failure (the PID is gone): inspect once more and retry
            if attempt == 1 and proc.returncode != 0 and stderr.startswith(b"nsenter: "):
                self._target = self._inspect()
                if hasattr(stdin, "seek"):
                    stdin.seek(0)
                continue
            return proc.returncode, stdout, stderr
        raise AssertionError("unreachable")

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        display.vvv(f"EXEC {cmd}", host=self._container())
        return self._run(to_text(cmd), subprocess.PIPE, in_data)

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container())
        if not os.path.exists(to_bytes(in_path)):
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}")
        with open(to_bytes(in_path), "rb") as source:
            rc, _, stderr = self._run(f"cat > {shlex.quote(out_path)}", source)
        if rc != 0:
            raise AnsibleError(f"failed to put {in_path} to {out_path}: {to_text(stderr)}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container())
        rc, stdout, stderr = self._run(f"cat -- {shlex.quote(in_path)}", subprocess.DEVNULL)
        if rc != 0:
            raise AnsibleError(f"failed to fetch {in_path}: {to_text(stderr)}")
        with open(to_bytes(out_path), "wb") as out:
            out.write(stdout)

    def close(self) -> None:
        self._connected = False
