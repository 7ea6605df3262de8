"""The shipped lab inventory, copied for a lab pair of a test's own (names and subnet)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def lab_inventory(target: Path, prefix: str, third_octet: int) -> Path:
    """Copy inventories/lab to ``target``: containers ``<prefix>-<host>``, 10.89.<octet>.x."""
    shutil.copytree(ROOT / "inventories" / "lab", target)
    hosts_file = target / "hosts.yml"
    inv = yaml.safe_load(hosts_file.read_text())
    for group in inv["all"]["children"]["lab"]["children"].values():
        for name, hostvars in group["hosts"].items():
            hostvars["ansible_host"] = f"{prefix}-{name}"
            hostvars["lab_ip"] = hostvars["lab_ip"].replace("10.89.154.", f"10.89.{third_octet}.")
    hosts_file.write_text(yaml.safe_dump(inv))
    return target
