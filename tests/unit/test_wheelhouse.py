"""playbooks/wheelhouse.yml as deploy.yml runs it: the pins, nazbench's own wheel, and the
naz releases the inventory asks naz-cli to run (``naz_cli_version``), from PyPI.

Runs the playbook for real into a scratch wheelhouse (it needs PyPI, as the controller
does), twice: the second run must change nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def _play(inventory: Path, wheelhouse: Path) -> subprocess.CompletedProcess:
    path = f"{BIN}:{os.environ['PATH']}"
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": path}
    return subprocess.run(
        [BIN / "ansible-playbook", "-i", inventory, ROOT / "playbooks/wheelhouse.yml",
         "-e", f"wheelhouse_dir={wheelhouse}"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip


def _changed(out: str) -> int:
    return int(re.search(r"localhost\s+:.*changed=(\d+)", out).group(1))


def test_the_wheelhouse_has_the_naz_release_the_inventory_asks_for(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"hosts": {"sfo1": {"naz_cli_version": "0.7.9"}, "ams1": None}}})
    )
    wheelhouse = tmp_path / "wheelhouse"
    first = _play(inventory, wheelhouse)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    assert "naz-0.7.9-py3-none-any.whl" in wheels, wheels
    pins = (ROOT / "requirements-hosts.txt").read_text()
    pinned_naz = re.search(r"^naz==(\S+)$", pins, re.M).group(1)
    assert f"naz-{pinned_naz}-py3-none-any.whl" in wheels, wheels
    # the shared virtualenv's requirements keep the pin: the producer's wire format
    requirements = (wheelhouse / "requirements.txt").read_text()
    assert re.findall(r"^naz==(\S+)$", requirements, re.M) == [pinned_naz], requirements
    assert re.search(r"^nazbench==\S+$", requirements, re.M), requirements

    second = _play(inventory, wheelhouse)
    assert second.returncode == 0, second.stdout[-3000:]
    assert _changed(second.stdout) == 0, second.stdout[-3000:]
