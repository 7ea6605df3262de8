"""run_start.yml's services for the chaos loop, rendered from a run's params.json (as
run_plan records it), must be what the loop accepts, with each service's own kinds and
parameters: the Jinja between the two is templated here with Ansible's own Templar."""

from __future__ import annotations

import importlib.util

import yaml
from ansible.module_utils.chaos_plan import validate_params
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from chaos_helpers import MODULES, ROOT

spec = importlib.util.spec_from_file_location("run_plan", MODULES / "run_plan.py")
run_plan = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_plan)


def _task(node):
    """The 'Start the chaos loop' task of run_start.yml."""
    if isinstance(node, dict):
        if node.get("name") == "Start the chaos loop" and "chaos_loop" in node:
            return node
        node = list(node.values())
    for child in node if isinstance(node, list) else []:
        if (found := _task(child)) is not None:
            return found
    return None


def _trust(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trust(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trust(v) for v in value]
    return value


def _services(params: dict) -> list[dict]:
    task = _task(yaml.safe_load((ROOT / "playbooks/run_start.yml").read_text()))
    variables = {
        **_trust(task["vars"]),
        "__run": {"params": params},
        "inventory_hostname": "ams1",
        "groups": {"smsc_servers": ["ams1"], "redis_servers": ["ams1"]},
    }
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(_trust(task["chaos_loop"]["services"]))


def _loop(services, tmp_path):
    config, errors = validate_params(
        {"run_id": "r1", "seed": 2, "services": services, "peers": ["10.0.0.2"],
         "duration": "16m", "timeline_path": str(tmp_path / "t.jsonl"),
         "lock_path": str(tmp_path / "chaos.lock")},
        check_mode=True,
    )  # fmt: skip
    assert errors == [], errors
    return {s.unit: s for s in config.services}


def test_the_nemesis_smsc_params_reach_the_loop(tmp_path):
    profile = yaml.safe_load((ROOT / "playbooks/profiles/nemesis-smsc.yml").read_text())
    run, _, errors = run_plan.plan_run(
        {**profile, "profile": "nemesis-smsc", "message_seed": 1, "chaos_enabled": True,
         "services": ["nazbench-smsc.service", "redis-server.service"], "run_id": "r1"}
    )  # fmt: skip
    assert errors == []
    loop = _loop(_services(run), tmp_path)
    smsc, redis = loop["nazbench-smsc.service"], loop["redis-server.service"]
    assert set(dict(smsc.kinds)) == {"throttle", "slow", "silent", "drop_resp", "unbind"}
    assert smsc.params["throttle"] == {"name": "throttle", "fraction": 0.5}
    assert smsc.params["slow"] == {"name": "slow", "delay_s": 10.0}
    assert smsc.control == "/run/nazbench-smsc/control.sock" and smsc.port == 2775
    assert set(dict(redis.kinds)) == {"stall", "loss"}
    assert redis.params == {"loss": {"fraction": 0.2}}
    assert redis.auth_file == "/etc/nazbench/redis.password" and redis.port == 6379


def test_params_from_before_the_smsc_kinds_give_the_seeds_stop(tmp_path):
    """An older params.json: no chaos_smsc/redis_kinds, no chaos_params_by_service."""
    old = {"chaos_services_run": [150.0, 210.0], "chaos_services_stop": [20.0, 40.0],
           "chaos_kinds": {"stop": 1.0}}  # fmt: skip
    loop = _loop(_services(old), tmp_path)
    assert {u: dict(s.kinds) for u, s in loop.items()} == {
        "nazbench-smsc.service": {"stop": 1.0},
        "redis-server.service": {"stop": 1.0},
    }
    assert all(s.params == {} and s.control is None for s in loop.values())
