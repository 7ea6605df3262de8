"""Campaigns (nazbench.campaign): the file, the matrix of runs, the queue over cells, and a
controller killed mid-campaign that resumes with no run repeated and none lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nazbench import campaign
from nazbench.campaign import BadInput, PlannedRun, Scheduler, State, expand, parse, run_argv

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "campaign": "ver",
    "profile": "micro",
    "experiments": ["A", "B"],
    "naz_versions": ["0.8.1", "0.7.9"],
    "seeds": [1, 2, 3],
}


def test_the_matrix_is_expanded_seed_by_seed_with_stable_ids() -> None:
    runs = expand(parse(GOOD))
    assert len(runs) == 12
    assert [r.run_id for r in runs[:4]] == [
        "ver-A-0.8.1-s1", "ver-B-0.8.1-s1", "ver-A-0.7.9-s1", "ver-B-0.7.9-s1",
    ]  # fmt: skip
    assert {(r.experiment, r.naz_version, r.seed) for r in runs} == {
        (e, v, s) for e in "AB" for v in ("0.8.1", "0.7.9") for s in (1, 2, 3)
    }
    assert parse({**GOOD, "cells": 2}).cells == (
        "inventories/cells/cell1",
        "inventories/cells/cell2",
    )
    c = parse({"campaign": "x", "seed_count": 4})
    assert (c.profile, c.experiments, c.naz_versions, c.seeds, c.cells) == (
        "smoke", ("A",), ("0.8.1",), (1, 2, 3, 4), ("inventories/lab",),
    )  # fmt: skip


BAD = [
    ({"campaign": "a b"}, "campaign:"),
    ({"profile": "huge"}, "profile:"),
    ({"experiments": ["A", "C"]}, "experiments:"),
    ({"experiments": []}, "experiments:"),
    ({"experiments": ["A", "A"]}, "experiments:"),
    ({"naz_versions": ["latest"]}, "naz_versions:"),
    ({"seeds": [1, -2]}, "seeds:"),
    ({"seeds": [1, True]}, "seeds:"),
    ({"seed_count": 0}, "seed_count:"),
    ({"seed_count": 3}, "seeds, seed_count:"),
    ({"cells": ["inventories/nowhere"]}, "cells:"),
    ({"cells": 0}, "cells: 1-32"),
    ({"vars": {"run_id": "x"}}, "vars: run_id"),
    ({"vars": ["message_count=3"]}, "vars:"),
    ({"thresholds": "gate-missing.yml"}, "thresholds:"),
    ({"seed": 3}, "seed: unknown key"),
    ({"seeds": list(range(300)), "naz_versions": ["0.8.1", "0.7.9"]}, "at most 1000"),
]


@pytest.mark.parametrize(("over", "named"), BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_a_bad_campaign_is_refused_naming_what_is_wrong(over, named) -> None:
    with pytest.raises(BadInput, match=named):
        parse({**GOOD, **over})


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(BadInput) as exc:
        parse({"campaign": "", "experiments": ["C"], "naz_versions": ["x"]})
    assert [p.split(":")[0] for p in str(exc.value).split("; ")] == [
        "campaign", "experiments", "naz_versions",
    ]  # fmt: skip


def test_the_commands_of_a_run_and_of_an_attach() -> None:
    c = parse({**GOOD, "vars": {"message_count": 300}})
    run = PlannedRun("ver-B-0.7.9-s2", "B", "0.7.9", 2)
    start, collect = run_argv(c, run, "inventories/lab", attach=False)
    assert start[:4] == ["ansible-playbook", "-i", "inventories/lab", "playbooks/run_chaos.yml"]
    assert json.loads(start[-1]) == {
        "message_count": 300, "run_id": "ver-B-0.7.9-s2", "profile": "micro",
        "chaos_enabled": False, "chaos_seed": 2, "naz_cli_version": "0.7.9",
    }  # fmt: skip
    assert collect[-2:] == ["-e", "run_id=ver-B-0.7.9-s2"]
    attach, _ = run_argv(c, run, "inventories/lab", attach=True)
    assert attach[-2:] == ["-e", "attach=ver-B-0.7.9-s2"]


class FakeCells:
    """execute() stand-in: each run takes ``seconds``; records what ran where, and checks
    that no cell ever runs two at once."""

    def __init__(self, seconds=0.02, fail=()):
        self.seconds, self.fail = seconds, set(fail)
        self.calls: list[tuple[str, str, bool]] = []
        self.busy: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, run, cell, attach):
        with self.lock:
            assert cell not in self.busy, f"{cell} given two runs at once"
            self.busy.add(cell)
            self.calls.append((run.run_id, cell, attach))
        time.sleep(self.seconds)
        with self.lock:
            self.busy.discard(cell)
        return 2 if run.run_id in self.fail else 0


def _campaign(tmp_path, cells=2, **over):
    for n in range(cells):
        (tmp_path / f"cell{n}").mkdir(exist_ok=True)
    (tmp_path / "playbooks/profiles").mkdir(parents=True, exist_ok=True)
    (tmp_path / "playbooks/profiles/micro.yml").write_text("chaos_duration: 90s\n")
    return parse({**GOOD, "cells": [f"cell{n}" for n in range(cells)], **over}, root=tmp_path)


def test_a_free_cell_takes_the_next_run_and_every_run_runs_once(tmp_path) -> None:
    c = _campaign(tmp_path, cells=3)
    state, cells, lines = State(tmp_path / "state.json", expand(c)), FakeCells(), []
    assert Scheduler(c, state, cells, report=lines.append).run() == []
    assert sorted(r for r, _, _ in cells.calls) == sorted(r.run_id for r in expand(c))
    assert {cell for _, cell, _ in cells.calls} == {"cell0", "cell1", "cell2"}
    assert not any(attach for _, _, attach in cells.calls)
    saved = json.loads((tmp_path / "state.json").read_text())["runs"]
    assert {e["status"] for e in saved.values()} == {"done"}
    assert lines[-1].split(";")[1].startswith(" done 12, running 0, left 0, failed 0")


def test_a_failed_run_is_named_and_tried_again_under_a_new_id_next_time(tmp_path) -> None:
    c = _campaign(tmp_path, cells=1, seeds=[1], naz_versions=["0.8.1"])
    state = State(tmp_path / "state.json", expand(c))
    first = FakeCells(fail={"ver-B-0.8.1-s1"})
    assert Scheduler(c, state, first, report=lambda _l: None).run() == ["ver-B-0.8.1-s1"]
    assert state.runs["ver-B-0.8.1-s1"]["error"] == "exit status 2"
    again = FakeCells()
    state = State(tmp_path / "state.json", expand(c))
    assert Scheduler(c, state, again, report=lambda _l: None).run() == []
    # the done run is not repeated; the failed one runs again as -r2
    assert again.calls == [("ver-B-0.8.1-s1-r2", "cell0", False)]
    assert state.runs["ver-B-0.8.1-s1"] == {
        "status": "done", "cell": "cell0", "attempt": 2, "run_id": "ver-B-0.8.1-s1-r2",
        "error": None,
    }  # fmt: skip


def test_a_run_left_running_is_attached_to_on_its_own_cell(tmp_path) -> None:
    c = _campaign(tmp_path, cells=2, seeds=[1], naz_versions=["0.8.1"])
    state = State(tmp_path / "state.json", expand(c))
    state.set("ver-A-0.8.1-s1", "running", cell="cell1", attempt=1, run_id="ver-A-0.8.1-s1")
    cells = FakeCells()
    scheduler = Scheduler(c, state, cells, report=lambda _l: None)
    assert scheduler.run() == []
    assert ("ver-A-0.8.1-s1", "cell1", True) in cells.calls
    assert len(cells.calls) == 2  # and B started once, somewhere
    assert len(scheduler.durations) == 1  # the time left is estimated from whole runs only


def test_a_run_left_running_on_a_cell_no_longer_listed_is_failed_not_lost(tmp_path) -> None:
    c = _campaign(tmp_path, cells=1, seeds=[1], naz_versions=["0.8.1"], experiments=["A"])
    state = State(tmp_path / "state.json", expand(c))
    state.set("ver-A-0.8.1-s1", "running", cell="cell9", attempt=1, run_id="ver-A-0.8.1-s1")
    assert Scheduler(c, state, FakeCells(), report=lambda _l: None).run() == ["ver-A-0.8.1-s1"]
    assert "cell9" in state.runs["ver-A-0.8.1-s1"]["error"]


def test_progress_says_what_is_left_and_how_long_it_may_take(tmp_path) -> None:
    c = _campaign(tmp_path)
    state = State(tmp_path / "state.json", expand(c))
    for run in expand(c)[:4]:
        state.set(run.run_id, "done")
    state.set(expand(c)[4].run_id, "running", cell="cell0")
    line = campaign.progress(state, cells=2, now=1300.0, started=100.0, finished=[600.0, 600.0])
    # 7 pending + 1 running over 2 cells: 4 waves of 10 minutes
    assert line == "done 4, running 1, left 7, failed 0; about 40 min left (20.0 min in)"
    assert campaign.minutes_per_run(c, root=tmp_path) == 1.5 + campaign.OVERHEAD_MIN


# --- the controller killed mid-campaign, for real ------------------------------------

FAKE_ANSIBLE = """\
#!{python}
# ansible-playbook stand-in: a run takes {seconds} s; collect writes a summary.json
import json, os, sys, time
root = os.environ["CAMPAIGN_ROOT"]  # the calls and the runs' parameters
artifacts = os.environ.get("CAMPAIGN_ARTIFACTS", os.path.join(root, "artifacts"))
with open(os.path.join(root, "calls.log"), "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[3] == "playbooks/run_chaos.yml":
    extra = sys.argv[5]
    if extra.startswith("attach="):
        run_id = extra.split("=", 1)[1]
    else:
        params = json.loads(extra)
        run_id = params["run_id"]
        with open(os.path.join(root, run_id + ".params"), "w") as out:
            json.dump(params, out)
    time.sleep({seconds})
else:
    run_id = sys.argv[5].split("=", 1)[1]
    params = json.load(open(os.path.join(root, run_id + ".params")))
    d = os.path.join(artifacts, run_id)
    os.makedirs(d, exist_ok=True)
    json.dump({{"run_id": run_id,
               "run": {{"experiment": "A" if params["chaos_enabled"] else "B",
                        "chaos_seed": params["chaos_seed"], "profile": params["profile"]}},
               "versions": {{"naz": params["naz_cli_version"]}},
               "messages": {{"queued": 100, "lost": params["chaos_seed"], "duplicated": 0}}}},
              open(os.path.join(d, "summary.json"), "w"))
"""


def test_a_controller_killed_mid_campaign_resumes_repeating_and_losing_nothing(
    tmp_path, monkeypatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ansible-playbook"
    fake.write_text(FAKE_ANSIBLE.format(python=sys.executable, seconds=0.6))
    fake.chmod(0o755)
    (tmp_path / "campaign.yml").write_text(
        "campaign: killed\nprofile: micro\nexperiments: [A, B]\nseeds: [1, 2, 3]\n"
        "cells: [inventories/lab]\n"
    )
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
           "CAMPAIGN_ROOT": str(tmp_path)}  # fmt: skip
    monkeypatch.setattr(campaign, "ROOT", tmp_path)
    script = (
        "import sys, nazbench.campaign as c, pathlib; "
        f"c.ROOT = pathlib.Path({str(tmp_path)!r}); sys.exit(c.main(sys.argv[1:]))"
    )
    (tmp_path / "inventories/lab").mkdir(parents=True)
    (tmp_path / "playbooks/profiles").mkdir(parents=True)
    (tmp_path / "playbooks/profiles/micro.yml").write_text("chaos_duration: 90s\n")
    argv = [sys.executable, "-c", script, "run", str(tmp_path / "campaign.yml")]
    first = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    state = tmp_path / "artifacts/campaign-killed/state.json"
    deadline = time.monotonic() + 30
    while True:  # kill it while its third run is running
        runs = json.loads(state.read_text())["runs"] if state.exists() else {}
        if sum(e["status"] == "done" for e in runs.values()) == 2 and any(
            e["status"] == "running" for e in runs.values()
        ):
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    interrupted = next(r for r, e in runs.items() if e["status"] == "running")
    c = campaign.load(tmp_path / "campaign.yml", root=tmp_path)
    look = campaign.status(c, State(c.dir / "state.json", expand(c)))
    assert look["over"] is False and "run the same command again" in look["failed"]
    assert look["line"].endswith("done 2, running 1, left 3, failed 0")
    second = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert second.returncode == 0, second.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    starts = [c.split(" -e ")[1] for c in calls if "run_chaos.yml" in c]
    started = [json.loads(s)["run_id"] for s in starts if s.startswith("{")]
    assert sorted(started) == sorted(
        r.run_id for r in expand(campaign.load(tmp_path / "campaign.yml", root=tmp_path))
    )  # every run started exactly once
    assert f"attach={interrupted}" in starts  # the interrupted one attached to, not restarted
    collected = [c.rsplit("run_id=", 1)[1] for c in calls if "collect.yml" in c]
    assert sorted(collected) == sorted(started)  # each collected once
    assert f"{interrupted}: attaching on inventories/lab" in second.stdout
    matrix = json.loads((tmp_path / "artifacts/campaign-killed/matrix.json").read_text())
    # the statistics of the six runs, one cell of the matrix per experiment
    assert sorted(r["run_id"] for r in matrix["runs"]) == sorted(started)
    assert {c["label"]: c["figures"]["loss_rate"]["mean"] for c in matrix["cells"]} == {
        "experiment=A, naz_version=0.8.1": pytest.approx(0.02),
        "experiment=B, naz_version=0.8.1": pytest.approx(0.02),
    }
