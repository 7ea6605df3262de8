"""nazbench.promexport against a tiny fake Prometheus (http.server in a thread)."""

from __future__ import annotations

import csv
import json
import threading
import typing
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nazbench import promexport

LIMIT = 11_000


class FakePrometheus(BaseHTTPRequestHandler):
    calls: typing.ClassVar[list[dict]] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, code: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        q = {k: v[0] for k, v in form.items()}
        if self.path != "/api/v1/query_range":
            self._reply(404, {"status": "error", "error": "not found"})
            return
        start, end, step = float(q["start"]), float(q["end"]), float(q["step"])
        self.calls.append({"query": q["query"], "start": start, "end": end, "step": step})
        points = round((end - start) / step) + 1
        if points > LIMIT:  # what Prometheus answers
            self._reply(
                400,
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "exceeded maximum resolution of 11,000 points per timeseries",
                },
            )
            return
        if "broken" in q["query"]:
            self._reply(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
            return
        if "nothing" in q["query"]:
            self._reply(200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
            return
        result = [
            {
                "metric": {"__name__": "m", "host": host, "region": "sfo", "run_id": "r1"},
                "values": [[start + i * step, str(i + k)] for i in range(points)],
            }
            for k, host in enumerate(("ams1", "sfo1"))
        ]
        self._reply(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})


@pytest.fixture
def prom():
    FakePrometheus.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", FakePrometheus.calls
    server.shutdown()
    server.server_close()


def test_chunks_cover_the_range_without_overlap() -> None:
    ranges = promexport.chunks(0, 5 * 24_999, 5, 11_000)
    assert ranges == [(0, 54_995), (55_000, 109_995), (110_000, 124_995)]
    assert promexport.chunks(10, 10, 5) == [(10, 10)]
    with pytest.raises(ValueError):
        promexport.chunks(10, 5, 1)


def test_long_range_is_chunked_and_joined(prom, tmp_path: Path) -> None:
    url, calls = prom
    out = tmp_path / "m"
    rc = promexport.main(
        ["--url", url, "--start", "1800000000", "--end", str(1800000000 + 5 * 24_999),
         "--step", "5s", "--run-id", "r1", "--out-dir", str(out), "--only", "naz_rss_bytes"]
    )  # fmt: skip
    assert rc == 0
    assert len(calls) == 3
    assert all(round((c["end"] - c["start"]) / 5) + 1 <= LIMIT for c in calls)
    assert 'run_id="r1"' in calls[0]["query"] and "{run_id}" not in calls[0]["query"]
    with (out / "naz_rss_bytes.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "value", "host"]  # region/run_id/__name__ are constant
    data = rows[1:]
    assert len(data) == 2 * 25_000
    ams = [r for r in data if r[2] == "ams1"]
    assert len({r[0] for r in ams}) == 25_000
    assert float(ams[-1][0]) == 1800000000 + 5 * 24_999
    index = json.loads((out / "metrics-index.json").read_text())
    entry = index["queries"]["naz_rss_bytes"]
    assert (entry["status"], entry["series"], entry["points"], entry["chunks"]) == (
        "ok",
        2,
        50_000,
        3,
    )
    assert entry["constant_labels"] == {"__name__": "m", "region": "sfo", "run_id": "r1"}


def test_failing_and_empty_queries_are_recorded(prom, tmp_path: Path, capsys) -> None:
    url, _ = prom
    out = tmp_path / "m"
    argv = ["--url", url, "--start", "2027-01-15T08:00:00Z", "--end", "2027-01-15T08:10:00Z",
            "--step", "5s", "--run-id", "r1", "--out-dir", str(out),
            "--query", "bad=broken{run_id=\"{run_id}\"}", "--query", "void=nothing",
            "--only", "bad", "--only", "void", "--only", "queue_length"]  # fmt: skip
    assert promexport.main(argv) == 0
    index = json.loads((out / "metrics-index.json").read_text())
    assert index["errors"] == ["bad"] and index["empty"] == ["void"]
    assert "parse error" in index["queries"]["bad"]["error"]
    assert index["queries"]["bad"]["promql"] == 'broken{run_id="r1"}'
    assert index["queries"]["queue_length"]["status"] == "ok"
    assert (out / "queue_length.csv").exists()
    assert not (out / "bad.csv").exists() and not (out / "void.csv").exists()
    assert index["start"] == 1800000000.0 and index["end"] == 1800000600.0
    capsys.readouterr()
    assert promexport.main([*argv, "--strict"]) == 1


def test_unreachable_prometheus_is_an_error_not_a_crash(tmp_path: Path) -> None:
    index = promexport.export(
        "http://127.0.0.1:9", "r1", 0, 60, 5, out_dir=tmp_path, queries={"q": "up"}, timeout=2
    )
    assert index["errors"] == ["q"] and "cannot reach" in index["queries"]["q"]["error"]


def test_every_default_query_renders_for_a_run() -> None:
    for name, template in promexport.QUERIES.items():
        promql = promexport.render(template, "run-1.x", "30s")
        assert "{run_id}" not in promql and "{window}" not in promql, name
        assert 'run_id="run-1.x"' in promql, name
    with pytest.raises(ValueError):
        promexport.render("x", 'r"}) or vector(1', "30s")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1800000000", 1800000000.0), ("2027-01-15T08:00:00Z", 1800000000.0),
     ("2027-01-15T08:00:00", 1800000000.0), ("2027-01-15T09:00:00+01:00", 1800000000.0)],
)  # fmt: skip
def test_parse_time(text: str, seconds: float) -> None:
    assert promexport.parse_time(text) == seconds


def test_parse_duration_and_bad_arguments(tmp_path: Path) -> None:
    assert promexport.parse_duration("5s") == 5
    assert promexport.parse_duration("500ms") == 0.5
    assert promexport.parse_duration("2m") == 120
    for bad in ("0s", "5x", "-1s"):
        with pytest.raises(ValueError):
            promexport.parse_duration(bad)
    with pytest.raises(SystemExit) as exc:
        promexport.main(
            ["--start", "10", "--end", "5", "--run-id", "r", "--out-dir", str(tmp_path)]
        )
    assert exc.value.code == 2
