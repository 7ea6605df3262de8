"""Cells (nazbench.cells): inventories of lab copies, each with its own names, addresses
and network, that ansible resolves as a playbook run with -i <cell> would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nazbench.cells import FIRST_OCTET, LAB_OCTET, lab_inventory, make_cells

BIN = Path(sys.executable).parent


def test_cells_get_their_own_names_addresses_and_network(tmp_path) -> None:
    cells = make_cells(3, tmp_path)
    assert [c.name for c in cells] == ["cell1", "cell2", "cell3"]
    seen = set()
    for k, cell in enumerate(cells, 1):
        hosts = yaml.safe_load((cell / "hosts.yml").read_text())["all"]["children"]["lab"]
        pairs = {h: v for g in hosts["children"].values() for h, v in g["hosts"].items()}
        octet = FIRST_OCTET + k - 1
        assert pairs == {
            "sfo1": {"ansible_host": f"nazbench-c{k}-sfo1", "lab_ip": f"10.89.{octet}.11"},
            "ams1": {"ansible_host": f"nazbench-c{k}-ams1", "lab_ip": f"10.89.{octet}.21"},
        }
        all_vars = yaml.safe_load((cell / "group_vars/all.yml").read_text())
        assert all_vars["lab_network"] == f"nazbench-c{k}"
        assert all_vars["lab_network_subnet"] == f"10.89.{octet}.0/24"
        seen.add(octet)
    assert len(seen) == 3 and not seen & {LAB_OCTET, 155, 156}  # the lab's, the e2e's


def test_an_existing_cell_is_kept_and_bad_counts_are_refused(tmp_path) -> None:
    (cell1,) = make_cells(1, tmp_path)
    (cell1 / "hosts.yml").write_text("# edited by hand\n")
    make_cells(2, tmp_path)
    assert (cell1 / "hosts.yml").read_text() == "# edited by hand\n"
    for bad in (0, 33):
        with pytest.raises(ValueError, match="cells: 1-32"):
            make_cells(bad, tmp_path)
    with pytest.raises(ValueError, match="not the lab's 154"):
        lab_inventory(tmp_path / "x", "p", LAB_OCTET)


def test_ansible_resolves_a_cell_for_the_controller_and_its_hosts(tmp_path) -> None:
    (cell,) = make_cells(1, tmp_path)
    out = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(cell), "--list"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    inv = json.loads(out.stdout)
    assert inv["_meta"]["hostvars"]["ams1"]["ansible_host"] == "nazbench-c1-ams1"
    assert inv["_meta"]["hostvars"]["ams1"]["lab_network"] == "nazbench-c1"
    assert inv["all"]["children"] and "smsc_servers" in inv["all"]["children"]
