"""Bad options fail before anything runs, with a message naming the option."""

from __future__ import annotations

import os
from unittest import mock

import pytest
import yaml
from ansible.module_utils import basic
from chaos_helpers import load_module, run_main


@pytest.fixture
def base(tmp_path):
    return {
        "run_id": "val-1",
        "seed": 1,
        "services": [
            {
                "unit": "smsc.service",
                "run_min": "1s",
                "run_max": "2s",
                "stop_min": 1,
                "stop_max": 2,
            },
            {
                "unit": "redis.service",
                "run_min": "1s",
                "run_max": "2s",
                "stop_min": 1,
                "stop_max": 2,
            },
        ],
        "duration": "10s",
        "timeline_path": str(tmp_path / "timeline.jsonl"),
        "lock_path": str(tmp_path / "chaos.lock"),
    }


CTL = "/run/nazbench-smsc/control.sock"


def svc(**over):
    entry = {"unit": "smsc.service", "run_min": "1s", "run_max": "2s", "stop_min": 1, "stop_max": 2}
    entry.update(over)
    return [entry]


BAD = [
    ("services-empty", {"services": []}, "services"),
    ("services-missing", {"services": None}, "services"),
    ("unit-missing", {"services": [{"run_min": "1s"}]}, "unit"),
    ("unit-space", {"services": svc(unit="my unit")}, "services[0].unit"),
    ("unit-option-injection", {"services": svc(unit="--force")}, "services[0].unit"),
    ("unit-slash", {"services": svc(unit="../etc/passwd")}, "services[0].unit"),
    ("unit-glob", {"services": svc(unit="redis*")}, "services[0].unit"),
    ("unit-template", {"services": svc(unit="getty@.service")}, "services[0].unit"),
    ("unit-too-long", {"services": svc(unit="a" * 300)}, "services[0].unit"),
    ("unit-duplicate", {"services": svc(unit="redis") + svc(unit="redis.service")}, "services"),
    ("run-min-gt-max", {"services": svc(run_min="3s", run_max="2s")}, "services[0].run_min"),
    ("stop-min-gt-max", {"services": svc(stop_min="3m", stop_max="1m")}, "services[0].stop_min"),
    ("run-min-zero", {"services": svc(run_min="0s")}, "services[0].run_min"),
    ("run-max-tiny", {"services": svc(run_max="0.05s")}, "services[0].run_max"),
    ("stop-max-negative", {"services": svc(stop_max="-5s")}, "services[0].stop_max"),
    ("stop-min-unknown-unit", {"services": svc(stop_min="13x")}, "services[0].stop_min"),
    ("run-max-malformed", {"services": svc(run_max="abc")}, "services[0].run_max"),
    ("run-min-wrong-order", {"services": svc(run_min="30s1m")}, "services[0].run_min"),
    ("stop-max-bool", {"services": svc(stop_max=True)}, "services[0].stop_max"),
    ("unknown-suboption", {"services": svc(run_mean="5s")}, "run_mean"),
    ("duration-too-short", {"duration": "1.5s"}, "duration"),
    ("duration-malformed", {"duration": "1h2h"}, "duration"),
    ("duration-zero", {"duration": 0}, "duration"),
    ("duration-unknown-unit", {"duration": "4 hours"}, "duration"),
    ("neither-duration-nor-stop-when", {"duration": None}, "duration"),
    ("run-id-space", {"run_id": "bad id"}, "run_id"),
    ("run-id-too-long", {"run_id": "x" * 65}, "run_id"),
    ("run-id-slash", {"run_id": "../x"}, "run_id"),
    ("action-unknown", {"action": "explode"}, "action"),
    ("stop-when-empty", {"stop_when": "  "}, "stop_when"),
    (
        "stop-when-interval-tiny",
        {"stop_when": "true", "stop_when_interval": "0.01s"},
        "stop_when_interval",
    ),
    ("stop-grace-negative", {"stop_when": "true", "stop_grace": "-1s"}, "stop_grace"),
    ("budget-smaller-than-duration", {"duration": "1h", "async_budget": "1h"}, "async_budget"),
    ("heal-reserve-eats-budget", {"async_budget": "60s", "heal_reserve": "60s"}, "heal_reserve"),
    ("budget-malformed", {"async_budget": "soon"}, "async_budget"),
    ("seed-not-int", {"seed": "abc"}, "seed"),
    ("lock-path-relative", {"lock_path": "chaos.lock"}, "lock_path"),
    ("unknown-option", {"chaos_level": 11}, "chaos_level"),
    # fault kinds (services[].kinds)
    ("kind-unknown", {"services": svc(kinds="explode")}, "services[0].kinds"),
    ("kind-misspelt", {"services": svc(kinds=["stop", "latencey"], port=2775),
                       "peers": ["10.0.0.2"]}, "services[0].kinds"),
    ("kinds-list-of-dicts", {"services": svc(kinds=[{"stop": 1}])}, "services[0].kinds"),
    ("kind-weights-overflow", {"services": svc(kinds={"stop": 1e308, "pause": 1e308})},
     "services[0].kinds"),
    ("peer-with-zone", {"services": svc(kinds="reset", port=2775), "peers": ["fe80::1%eth0"]},
     "peers"),
    ("kinds-empty-list", {"services": svc(kinds=[])}, "services[0].kinds"),
    ("kinds-empty-dict", {"services": svc(kinds={})}, "services[0].kinds"),
    ("kinds-twice", {"services": svc(kinds=["pause", "pause"])}, "services[0].kinds"),
    ("kinds-number", {"services": svc(kinds=3)}, "services[0].kinds"),
    (
        "kind-weight-negative",
        {"services": svc(kinds={"stop": 1, "pause": -1})},
        "services[0].kinds",
    ),
    ("kind-weight-bool", {"services": svc(kinds={"pause": True})}, "services[0].kinds"),
    ("kind-weight-text", {"services": svc(kinds={"pause": "lots"})}, "services[0].kinds"),
    ("kind-weight-inf", {"services": svc(kinds={"pause": float("inf")})}, "services[0].kinds"),
    ("kind-weight-nan", {"services": svc(kinds={"pause": float("nan")})}, "services[0].kinds"),
    ("kind-weights-zero", {"services": svc(kinds={"stop": 0, "pause": 0})}, "services[0].kinds"),
    # network kinds: a port and the naz hosts to scope the rules to, or nothing happens
    ("network-kind-without-port", {"services": svc(kinds="blackhole"), "peers": ["10.0.0.2"]},
     "services[0].kinds"),
    ("network-kind-without-peers", {"services": svc(kinds="reset", port=2775)}, "peers"),
    ("network-kind-empty-peers", {"services": svc(kinds="half_open", port=2775), "peers": []},
     "peers"),
    ("peer-a-name", {"services": svc(kinds="reset", port=2775), "peers": ["naz.example"]},
     "peers"),
    ("peer-a-network", {"services": svc(kinds="reset", port=2775), "peers": ["10.0.0.0/24"]},
     "peers"),
    ("peer-unspecified", {"services": svc(kinds="reset", port=2775), "peers": ["0.0.0.0"]},
     "peers"),
    ("peer-twice", {"services": svc(kinds="reset", port=2775), "peers": ["10.0.0.2", "10.0.0.2"]},
     "peers"),
    ("port-zero", {"services": svc(kinds="reset", port=0), "peers": ["10.0.0.2"]},
     "services[0].port"),
    ("port-too-big", {"services": svc(kinds="reset", port=70000), "peers": ["10.0.0.2"]},
     "services[0].port"),
    # the SMSC kinds: their control socket and their parameters
    ("smsc-kind-no-control", {"services": svc(kinds="throttle")}, "services[0].control"),
    ("control-relative", {"services": svc(kinds="silent", control="run/smsc.sock")},
     "services[0].control"),
    ("control-too-long", {"services": svc(kinds="silent", control="/" + "s" * 120)},
     "services[0].control"),
    ("control-empty", {"services": svc(kinds="unbind", control="")},
     "services[0].control"),
    ("loss-fraction-one", {"services": svc(kinds="loss", port=2775,
                                           params={"loss": {"fraction": 1}}),
                           "peers": ["10.0.0.2"]}, "services[0].params.loss"),
    ("loss-fraction-below-nfts-grain", {"services": svc(kinds="loss", port=2775,
                                                        params={"loss": {"fraction": 1e-5}}),
                                        "peers": ["10.0.0.2"]}, "services[0].params.loss"),
    ("loss-without-port", {"services": svc(kinds="loss"), "peers": ["10.0.0.2"]},
     "services[0].kinds"),
    ("latency-without-port", {"services": svc(kinds="latency"), "peers": ["10.0.0.2"]},
     "services[0].kinds"),
    ("latency-without-peers", {"services": svc(kinds="latency", port=2775)}, "peers"),
    ("latency-delay-zero", {"services": svc(kinds="latency", port=2775,
                                            params={"latency": {"delay_ms": 0}}),
                            "peers": ["10.0.0.2"]}, "services[0].params.latency"),
    ("latency-delay-above-a-minute", {"services": svc(kinds="latency", port=2775,
                                                      params={"latency": {"delay_ms": 60001}}),
                                      "peers": ["10.0.0.2"]}, "services[0].params.latency"),
    ("latency-delay-in-seconds", {"services": svc(kinds="latency", port=2775,
                                                  params={"latency": {"delay_s": 1}}),
                                  "peers": ["10.0.0.2"]}, "services[0].params.latency"),
    ("params-not-a-dict", {"services": svc(kinds="throttle", control=CTL, params="0.5")},
     "services[0].params"),
    ("params-of-an-unknown-kind", {"services": svc(kinds="throttle", control=CTL,
                                                   params={"throttel": {"fraction": 0.5}})},
     "services[0].params"),
    ("params-of-a-kind-not-drawn", {"services": svc(kinds="throttle", control=CTL,
                                                    params={"slow": {"delay_s": 2}})},
     "services[0].params"),
    ("params-of-a-process-kind", {"services": svc(kinds="stop,throttle", control=CTL,
                                                  params={"stop": {"fraction": 1}})},
     "services[0].params"),
    ("params-kind-not-a-dict", {"services": svc(kinds="throttle", control=CTL,
                                                 params={"throttle": 0.5})},
     "services[0].params.throttle"),
    ("params-unknown-parameter", {"services": svc(kinds="slow", control=CTL,
                                                  params={"slow": {"delay": 2}})},
     "services[0].params.slow"),
    ("params-parameter-of-another-mode", {"services": svc(kinds="silent", control=CTL,
                                                          params={"silent": {"fraction": 1}})},
     "services[0].params.silent"),
    ("throttle-fraction-zero", {"services": svc(kinds="throttle", control=CTL,
                                                params={"throttle": {"fraction": 0}})},
     "services[0].params.throttle"),
    ("throttle-fraction-above-one", {"services": svc(kinds="throttle", control=CTL,
                                                     params={"throttle": {"fraction": 1.5}})},
     "services[0].params.throttle"),
    ("drop-resp-fraction-negative", {"services": svc(kinds="drop_resp", control=CTL,
                                                     params={"drop_resp": {"fraction": -0.1}})},
     "services[0].params.drop_resp"),
    ("drop-resp-fraction-text", {"services": svc(kinds="drop_resp", control=CTL,
                                                 params={"drop_resp": {"fraction": "half"}})},
     "services[0].params.drop_resp"),
    ("slow-delay-zero", {"services": svc(kinds="slow", control=CTL,
                                         params={"slow": {"delay_s": 0}})},
     "services[0].params.slow"),
    ("slow-delay-above-a-minute", {"services": svc(kinds="slow", control=CTL,
                                                   params={"slow": {"delay_s": 61}})},
     "services[0].params.slow"),
    ("slow-delay-bool", {"services": svc(kinds="slow", control=CTL,
                                         params={"slow": {"delay_s": True}})},
     "services[0].params.slow"),
    ("slow-delay-nan", {"services": svc(kinds="slow", control=CTL,
                                        params={"slow": {"delay_s": float("nan")}})},
     "services[0].params.slow"),
    ("params-name-smuggled", {"services": svc(kinds="slow", control=CTL,
                                              params={"slow": {"name": "normal"}})},
     "services[0].params.slow"),
]  # fmt: skip


@pytest.mark.parametrize(("over", "option"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_option_fails_naming_it_and_runs_nothing(monkeypatch, base, over, option):
    args = {**base, **over}
    args = {k: v for k, v in args.items() if v is not None}
    outcome, result, run_command = run_main(monkeypatch, args)
    assert outcome == "fail", result
    assert option in result["msg"], result["msg"]
    run_command.assert_not_called()


def test_timeline_dir_missing(monkeypatch, base, tmp_path):
    args = {**base, "timeline_path": str(tmp_path / "nope" / "timeline.jsonl")}
    outcome, result, run_command = run_main(monkeypatch, args)
    assert outcome == "fail"
    assert "timeline_path" in result["msg"] and "does not exist" in result["msg"]
    run_command.assert_not_called()


def test_timeline_path_is_a_directory(monkeypatch, base, tmp_path):
    outcome, result, run_command = run_main(monkeypatch, {**base, "timeline_path": str(tmp_path)})
    assert outcome == "fail"
    assert "timeline_path" in result["msg"]
    run_command.assert_not_called()


def test_timeline_dir_unwritable(monkeypatch, base, tmp_path):
    real_access = os.access

    def access(path, mode, **kwargs):
        if str(path) == str(tmp_path):
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    outcome, result, run_command = run_main(monkeypatch, base)
    assert outcome == "fail"
    assert "timeline_path" in result["msg"] and "not writable" in result["msg"]
    run_command.assert_not_called()


def test_every_error_is_reported_at_once(monkeypatch, base):
    args = {**base, "run_id": "a b", "duration": "1x"}
    outcome, result, _ = run_main(monkeypatch, args)
    assert outcome == "fail"
    assert "run_id" in result["msg"] and "duration" in result["msg"]


def test_check_mode_returns_the_plan_and_touches_nothing(monkeypatch, base, tmp_path):
    outcome, result, run_command = run_main(monkeypatch, base, check_mode=True)
    assert outcome == "exit", result
    run_command.assert_not_called()
    assert set(result["plan"]) == {"smsc.service", "redis.service"}
    assert result["changed"] is True  # it would stop services
    assert result["timeline"] == [] and result["healed"] == []
    assert result["summary"]["end_reason"] == "check_mode"
    assert result["summary"]["services"]["smsc.service"]["outages"] >= 2
    assert sorted(os.listdir(tmp_path)) == []  # no lock, no state, no timeline


def test_check_mode_only_warns_about_a_missing_timeline_dir(monkeypatch, base, tmp_path):
    args = {**base, "timeline_path": str(tmp_path / "later" / "t.jsonl")}
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, w: warnings.append(w))
    outcome, _result, run_command = run_main(monkeypatch, args, check_mode=True)
    assert outcome == "exit"
    assert any("timeline_path" in w for w in warnings)
    run_command.assert_not_called()


def test_check_mode_plan_equals_real_plan_record(monkeypatch, base):
    _, checked, _ = run_main(monkeypatch, base, check_mode=True)
    _, again, _ = run_main(monkeypatch, base, check_mode=True)
    assert checked["plan"] == again["plan"]


def test_heal_only_needs_neither_services_nor_duration(monkeypatch, base):
    args = {
        "run_id": base["run_id"],
        "heal_only": True,
        "timeline_path": base["timeline_path"],
        "lock_path": base["lock_path"],
    }
    get_bin_path = mock.Mock(return_value="/bin/systemctl")
    outcome, result, run_command = run_main(monkeypatch, args, get_bin_path=get_bin_path)
    assert outcome == "exit", result
    assert result["healed"] == [] and result["changed"] is False
    run_command.assert_not_called()


# --------------------------------------------------------------------------- documentation


def _doc_options(options):
    spec = {}
    for name, doc in options.items():
        entry = {"type": doc.get("type", "str")}
        for key in ("required", "default", "choices", "elements"):
            if key in doc:
                entry[key] = doc[key]
        if "suboptions" in doc:
            entry["options"] = _doc_options(doc["suboptions"])
        spec[name] = entry
    return spec


def _spec_options(argument_spec):
    spec = {}
    for name, arg in argument_spec.items():
        entry = {"type": arg.get("type", "str")}
        for key in ("required", "default", "choices", "elements"):
            if key in arg and not (key == "required" and arg[key] is False):
                entry[key] = arg[key]
        if "options" in arg:
            entry["options"] = _spec_options(arg["options"])
        spec[name] = entry
    return spec


def test_documentation_matches_argument_spec():
    module = load_module("chaos_loop")
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == "chaos_loop"
    assert _doc_options(doc["options"]) == _spec_options(module.ARGUMENT_SPEC)


def test_examples_and_return_are_yaml():
    module = load_module("chaos_loop")
    examples = yaml.safe_load(module.EXAMPLES)
    assert any("async_status" in str(task) for task in examples)
    assert any(task.get("poll") == 0 for task in examples if isinstance(task, dict))
    returned = yaml.safe_load(module.RETURN)
    for key in ("plan", "timeline", "summary", "healed"):
        assert "sample" in returned[key]
