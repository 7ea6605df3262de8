"""Molecule's hosts must be lab hosts: same image and podman settings as roles/lab."""

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
