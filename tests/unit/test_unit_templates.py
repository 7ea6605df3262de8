"""The systemd units the roles template, rendered as Ansible renders them and read back.

A unit template is code nothing else runs before a host does: a Jinja block that eats a
newline (the template module's trim_blocks) once glued `StateDirectory=` onto the SMSC's
last argument, and the SMSC never started in molecule or the e2e. Here every
`*.service.j2` is rendered with Ansible's own templar and the role's defaults, once per
value of each boolean default, and then:

- every directive the template writes at the start of a line is still a directive of its
  own in the result (nothing glued, nothing lost);
- the command line of each of our Python services parses with that service's own
  argparse parser (and the SMSC's builds its configuration), so a flag the template
  passes and the program does not know fails here, not on a host.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from nazbench.nazapp.cli import make_parser as naz_runner_parser
from nazbench.shipper.cli import build_parser as shipper_parser
from nazbench.smsc.cli import config_from_args
from nazbench.smsc.cli import make_parser as smsc_parser

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted(ROOT.glob("roles/*/templates/*.service.j2"))
DIRECTIVE = re.compile(r"^([A-Z][A-Za-z]+)=")

# What a play gives the templates besides the role's own variables: facts and inventory
# of one lab host that is in every group.
HOST = "ams1"
FACTS = {"default_ipv4": {"address": "10.89.0.3"}}


def _yaml(path: Path) -> dict:
    return (yaml.safe_load(path.read_text()) if path.exists() else None) or {}


def _role_vars(unit: Path) -> dict:
    role = unit.parents[1]
    return {**_yaml(role / "defaults" / "main.yml"), **_yaml(role / "vars" / "main.yml")}


def _render(unit: Path, overrides: dict) -> str:
    # Ansible trusts what a role's own files say (templates in vars are rendered), not data.
    role_vars = {
        k: trust_as_template(v) if isinstance(v, str) else v for k, v in _role_vars(unit).items()
    }
    role_vars.update(overrides)
    names = ("all", "lab", "ams", "sfo", "naz_clients", "smsc_servers", "redis_servers")
    groups = {g: [HOST] for g in (*names, "observability")}
    variables = {
        **role_vars,
        "ansible_managed": "Ansible managed",
        "inventory_hostname": HOST,
        "ansible_facts": FACTS,
        "groups": groups,
        "hostvars": {HOST: {"ansible_facts": FACTS}},
        "ansible_check_mode": False,
    }
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template(unit.read_text()))


def _flips(unit: Path) -> list[dict]:
    """The role's defaults once as they are ({}), then with each boolean default flipped."""
    defaults = _yaml(unit.parents[1] / "defaults" / "main.yml")
    return [{}] + [{k: not v} for k, v in defaults.items() if isinstance(v, bool)]


def _cases():
    """Each unit with each of its _flips."""
    for unit in UNITS:
        name = f"{unit.parents[1].name}/{unit.name}"
        for flip in _flips(unit):
            label = "".join(f":{k}={v}" for k, v in flip.items())
            yield pytest.param(unit, flip, id=name + label)


def _logical_lines(text: str) -> list[str]:
    return re.sub(r"\\\n", " ", text).splitlines()


def _exec_start(text: str) -> list[str]:
    (line,) = [ln for ln in _logical_lines(text) if ln.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


@pytest.mark.parametrize(("unit", "overrides"), list(_cases()))
def test_every_directive_of_the_template_stays_a_line_of_its_own(unit, overrides):
    written = {m.group(1) for ln in unit.read_text().splitlines() if (m := DIRECTIVE.match(ln))}
    rendered = _render(unit, overrides)
    kept = {m.group(1) for ln in _logical_lines(rendered) if (m := DIRECTIVE.match(ln))}
    assert written, unit
    assert kept == written, f"lost or glued: {sorted(written - kept)}\n{rendered}"
    # A directive name inside an argument means two lines ran together.
    glued = [ln for ln in rendered.splitlines() if re.search(r"\S(" + "|".join(written) + ")=", ln)]
    assert not glued, glued


def test_the_smsc_command_line_parses_with_the_smscs_parser_with_each_boolean(tmp_path):
    unit = ROOT / "roles/smsc/templates/nazbench-smsc.service.j2"
    password = tmp_path / "smsc.password"
    password.write_text("secret\n")
    seen = []
    for overrides in _flips(unit):
        argv = _exec_start(_render(unit, overrides))
        assert argv[1:3] == ["-m", "nazbench.smsc"], argv
        # The host's password file is not here: the same flag, a file that exists.
        argv[argv.index("--password-file") + 1] = str(password)
        parser = smsc_parser()
        args = parser.parse_args(argv[3:])
        config = config_from_args(parser, args)
        role_vars = {**_role_vars(unit), **overrides}
        assert config.port == role_vars["smsc_port"]
        # every setting of the role reaches the SMSC's configuration under its own name
        for name in ("receipts", "receipt_delay", "receipt_states", "receipt_seed"):
            assert getattr(config, name) == role_vars[f"smsc_{name}"], name
        for name in ("receipt_retry", "receipt_max_tries", "backlog", "system_id"):
            assert getattr(config, name) == role_vars[f"smsc_{name}"], name
        assert str(config.control_socket) == role_vars["smsc_control_socket"]
        seen.append(config)
    assert seen


def test_the_log_shippers_command_line_parses_with_the_shippers_parser():
    unit = ROOT / "roles/log_shipper/templates/nazbench-log-shipper.service.j2"
    argv = _exec_start(_render(unit, {}))
    assert argv[1:3] == ["-m", "nazbench.shipper"], argv
    args = shipper_parser().parse_args(argv[3:])
    assert args.source_host == HOST


@pytest.mark.parametrize("version", ["0.6.1", "0.7.9", "0.8.1"])
def test_naz_cli_runs_the_chosen_naz_from_its_own_virtualenv(version):
    unit = ROOT / "roles/naz_cli/templates/nazbench-naz-cli.service.j2"
    argv = _exec_start(_render(unit, {"naz_cli_version": version}))
    venv = f"/opt/nazbench/naz-{version}"
    assert argv[0].startswith(venv + "/bin/"), argv
    if version.startswith("0.6."):
        # naz 0.6.x's own naz-cli cannot run on Python >= 3.10: nazbench's runner instead
        assert argv[0] == venv + "/bin/python" and argv[1:3] == ["-m", "nazbench.nazapp.cli"]
        args = naz_runner_parser().parse_args(argv[3:])
        assert args.client == "nazbench.nazapp.app.client" and not args.dry_run
    else:
        assert argv == [venv + "/bin/naz-cli", "--client", "nazbench.nazapp.app.client"]
