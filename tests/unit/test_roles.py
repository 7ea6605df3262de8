"""Static checks that keep roles, argument specs, inventory and molecule in step."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_document_exactly_the_defaults(role):
    defaults = _yaml(role / "defaults" / "main.yml") or {}
    options = _yaml(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec.get("description"), f"{name} has no description"
        assert spec.get("default") == defaults[name], f"{name}: spec default != defaults/main.yml"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_public_variables_carry_the_role_prefix(role):
    defaults = _yaml(role / "defaults" / "main.yml") or {}
    assert all(name.startswith(f"{role.name}_") for name in defaults), sorted(defaults)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_templates_start_with_ansible_managed(role):
    for template in (role / "templates").glob("*.j2"):
        head = template.read_text().splitlines()[:2]
        assert any("ansible_managed" in line for line in head), template.name


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_meta_names_the_role(role):
    info = _yaml(role / "meta" / "main.yml")["galaxy_info"]
    assert info["role_name"] == role.name
    assert info["namespace"] == "nazbench"


def test_lab_inventory_places_every_host_in_one_region_and_the_design_groups():
    inv = _yaml(ROOT / "inventories" / "lab" / "hosts.yml")["all"]["children"]
    regions = inv["lab"]["children"]
    region_of = {}
    for region, group in regions.items():
        for host in group["hosts"]:
            assert host not in region_of, f"{host} is in two regions"
            region_of[host] = region
    assert region_of == {"sfo1": "sfo", "ams1": "ams"}
    placement = {
        g: sorted(inv[g]["hosts"])
        for g in ("naz_clients", "observability", "smsc_servers", "redis_servers")
    }
    assert placement == {
        "naz_clients": ["sfo1"],
        "observability": ["sfo1"],
        "smsc_servers": ["ams1"],
        "redis_servers": ["ams1"],
    }
    ips = [h["lab_ip"] for g in regions.values() for h in g["hosts"].values()]
    assert len(set(ips)) == len(ips)
