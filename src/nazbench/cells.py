"""Cells: complete copies of the lab's benchmark hosts, each an inventory of its own.

A cell is the lab's sfo/ams pair under other names: containers ``<prefix>-sfo1`` and
``<prefix>-ams1`` on a podman network of its own (``lab_network``, subnet
10.89.<octet>.0/24), with its own WAN delay, services and runs. Its inventory is a copy
of ``inventories/lab`` with those names, addresses and network in it, so every playbook
works on it with ``-i`` (run_chaos.yml provisions and deploys a new cell on its first
run). Runs in different cells cannot reach each other: separate networks.

    python -m nazbench.cells 3        # inventories/cells/cell1 .. cell3

The e2e tests make their own pairs with the same function (tests/e2e/labcopy.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LAB_OCTET = 154  # the lab's own 10.89.154.0/24
FIRST_OCTET = 160  # cell K: 10.89.(159 + K); the e2e's pairs use 155 and 156
MAX_CELLS = 32


def lab_inventory(target: Path, prefix: str, third_octet: int, network: str | None = None) -> Path:
    """Copy inventories/lab to ``target``: containers ``<prefix>-<host>``, addresses
    10.89.<octet>.x; with ``network``, the podman network (and its subnet) written into
    the copy's group_vars/all.yml so that ``-i target`` is all a playbook needs."""
    if not (0 <= third_octet <= 255) or third_octet == LAB_OCTET:
        raise ValueError(f"third octet {third_octet}: 0-255 and not the lab's {LAB_OCTET}")
    shutil.copytree(ROOT / "inventories" / "lab", target)
    hosts_file = target / "hosts.yml"
    inv = yaml.safe_load(hosts_file.read_text())
    for group in inv["all"]["children"]["lab"]["children"].values():
        for name, hostvars in group["hosts"].items():
            hostvars["ansible_host"] = f"{prefix}-{name}"
            hostvars["lab_ip"] = hostvars["lab_ip"].replace(
                f"10.89.{LAB_OCTET}.", f"10.89.{third_octet}."
            )
    hosts_file.write_text(yaml.safe_dump(inv))
    if network:
        with (target / "group_vars/all.yml").open("a", encoding="utf-8") as out:
            out.write(
                f"# this cell's own podman network (nazbench.cells)\n"
                f"lab_network: {network}\nlab_network_subnet: 10.89.{third_octet}.0/24\n"
            )
    return target


def make_cells(count: int, base: Path | None = None) -> list[Path]:
    """Inventories ``<base>/cell1`` .. ``cell<count>`` (default base inventories/cells);
    a cell's inventory that exists is kept as it is (its containers may be running)."""
    if not 1 <= count <= MAX_CELLS:
        raise ValueError(f"cells: 1-{MAX_CELLS}, got {count}")
    base = base or ROOT / "inventories" / "cells"
    made = []
    for k in range(1, count + 1):
        target = base / f"cell{k}"
        if not target.exists():
            lab_inventory(target, f"nazbench-c{k}", FIRST_OCTET + k - 1, f"nazbench-c{k}")
        made.append(target)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help=f"how many cells (1-{MAX_CELLS})")
    args = parser.parse_args(argv)
    try:
        cells = make_cells(args.count)
    except ValueError as exc:
        sys.stderr.write(f"cells: {exc}\n")
        return 2
    for cell in cells:
        sys.stdout.write(f"{cell.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
