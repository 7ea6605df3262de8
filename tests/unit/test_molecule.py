"""Molecule's hosts must be lab hosts: same image and podman settings as roles/lab."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_molecule_platforms_use_the_lab_settings():
    lab = yaml.safe_load((ROOT / "roles/lab/defaults/main.yml").read_text())
    base = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    assert base["driver"]["name"] == "podman"
    platforms = base["platforms"]
    assert {p["hostname"] for p in platforms} == {"sfo1", "ams1"}
    for p in platforms:
        assert p["image"] == lab["lab_image"]
        assert p["extra_opts"] == [f"--runtime={lab['lab_container_runtime']}"]
        assert p["ulimits"] == lab["lab_container_ulimits"]
        assert p["capabilities"] == lab["lab_container_capabilities"]
        assert p["systemd"] == "always"
        assert p["override_command"] is False  # systemd must stay PID 1
    assert len({p["network"] for p in platforms}) == 1
    regions = [{"sfo", "ams"} & set(p["groups"]) for p in platforms]
    assert sorted(r.pop() for r in regions) == ["ams", "sfo"]


def test_every_scenario_runs_idempotence_and_verify():
    base = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    sequence = base["scenario"]["test_sequence"]
    assert sequence.index("converge") < sequence.index("idempotence") < sequence.index("verify")
    for scenario in (ROOT / "molecule").iterdir():
        own = yaml.safe_load((scenario / "molecule.yml").read_text()) or {}
        assert "idempotence" in own.get("scenario", {}).get("test_sequence", sequence), scenario
        assert (scenario / "verify.yml").exists(), scenario


def _platforms(scenario: Path) -> list[dict]:
    own = yaml.safe_load((scenario / "molecule.yml").read_text()) or {}
    base = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    return own.get("platforms", base["platforms"])


def test_scenarios_run_side_by_side_have_their_own_hosts():
    """make test runs message_path beside default then redis: no shared container or network."""
    lab = yaml.safe_load((ROOT / "roles/lab/defaults/main.yml").read_text())
    path = _platforms(ROOT / "molecule/message_path")
    others = _platforms(ROOT / "molecule/default") + _platforms(ROOT / "molecule/redis")
    assert not {p["name"] for p in path} & {p["name"] for p in others}
    assert not {p["network"] for p in path} & {p["network"] for p in others}
    for p in path:  # still lab hosts
        assert p["image"] == lab["lab_image"]
        assert p["capabilities"] == lab["lab_container_capabilities"]
        assert p["ulimits"] == lab["lab_container_ulimits"]
        assert (p["systemd"], p["override_command"]) == ("always", False)
    assert sorted(p["hostname"] for p in path) == ["ams1", "sfo1"]


def test_make_test_runs_every_scenario():
    """make test names scenarios one by one (to run them side by side): none left out."""
    make = (ROOT / "Makefile").read_text()
    jobs = re.findall(r"^MOLECULE_(?:PATH|ROLES) := (.*)$", make, re.MULTILINE)
    named = re.findall(r"molecule test -s (\S+)", " ".join(jobs))
    assert sorted(named) == sorted(d.name for d in (ROOT / "molecule").iterdir() if d.is_dir())
    assert len(named) == len(set(named))
