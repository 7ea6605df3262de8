"""A run's start and end on the naz host (nazbench.runhost), against a real redis-server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from nazbench import runhost


@pytest.fixture
def metrics():
    """naz-cli's metrics endpoint, answering a fixed RSS."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"# HELP x\nprocess_resident_memory_bytes 3.5e+07\n"
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def run_dir(tmp_path, redis_server, metrics):
    d = tmp_path / "runs" / "r1"
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps({"run_id": "r1"}))
    conf = tmp_path / "naz.json"
    conf.write_text(
        json.dumps(
            {"redis_host": "127.0.0.1", "redis_port": redis_server.port, "metrics_port": metrics}
        )
    )
    return d, conf


def call(capsys, *argv):
    rc = runhost.main([str(a) for a in argv])
    return rc, json.loads(capsys.readouterr().out)


def test_start_records_the_hosts_time_once(run_dir, capsys, monkeypatch):
    d, conf = run_dir
    monkeypatch.setattr(runhost.time, "time", lambda: 1764483300.25)
    rc, out = call(capsys, "start", "--run-dir", d, "--naz-config", conf)
    assert rc == 0 and out["changed"] is True
    assert out["start"]["started_at"] == 1764483300.25
    assert out["start"]["naz_rss_start_bytes"] == 35e6 and out["start"]["queue_before"] == 0
    monkeypatch.setattr(runhost.time, "time", lambda: 1764490000.0)
    rc, again = call(capsys, "start", "--run-dir", d, "--naz-config", conf)
    assert rc == 0 and again == {"changed": False, "start": out["start"]}


def test_start_refuses_an_earlier_runs_queue_unless_purged(run_dir, redis_client, capsys):
    d, conf = run_dir
    redis_client.lpush("naz_benchmarks_queue", "a", "b")
    rc, out = call(capsys, "start", "--run-dir", d, "--naz-config", conf)
    assert rc == runhost.EXIT_QUEUE_BUSY and "still holds 2 messages" in out["msg"]
    assert not (d / "start.json").exists()
    rc, out = call(capsys, "start", "--run-dir", d, "--naz-config", conf, "--purge")
    assert (
        rc == 0
        and out["start"]["purged"] is True
        and redis_client.llen("naz_benchmarks_queue") == 0
    )


def test_end_records_queue_and_memory_and_survives_redis_down(
    run_dir, redis_server, redis_client, capsys
):
    d, conf = run_dir
    redis_client.lpush("naz_benchmarks_queue", "left")
    rc, out = call(capsys, "end", "--run-dir", d, "--naz-config", conf)
    assert rc == 0 and out["end"]["queue_end"] == 1 and out["end"]["naz_rss_end_bytes"] == 35e6
    (d / "end.json").unlink()
    redis_server.stop()
    rc, out = call(capsys, "end", "--run-dir", d, "--naz-config", conf)
    assert rc == 0 and out["end"]["queue_end"] is None


def test_show_names_the_runs_a_host_knows(run_dir, capsys):
    d, conf = run_dir
    call(capsys, "start", "--run-dir", d, "--naz-config", conf)
    rc, out = call(capsys, "show", "--run-dir", d)
    assert rc == 0 and out["params"]["run_id"] == "r1" and out["start"]["started_at"] > 0
    rc, out = call(capsys, "show", "--run-dir", d.parent / "r2")
    assert rc == 2 and "runs started here: r1" in out["msg"]
