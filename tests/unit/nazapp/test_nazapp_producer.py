from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import naz
import pytest

from nazbench import msgid
from nazbench.nazapp import producer
from nazbench.nazapp.producer import Params, generate, main, marker_key

QUEUE = "naz_benchmarks_queue"


@pytest.fixture
def args(redis_server, tmp_path: Path):
    def build(*extra: str, run_id: str = "run-1", count: int | str = 50) -> list[str]:
        return [
            "--run-id",
            run_id,
            "--count",
            str(count),
            "--manifest",
            str(tmp_path / "manifest.json"),
            "--redis-port",
            str(redis_server.port),
            "--quiet",
            *extra,
        ]

    return build


def outcome(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_enqueues_exactly_n_and_writes_the_manifest(args, redis_client, tmp_path, capsys):
    assert main(args("--seed", "7", "--ids-file", str(tmp_path / "ids.txt"))) == 0
    out = outcome(capsys)
    assert out["changed"] is True and out["enqueued"] == 50
    assert redis_client.llen(QUEUE) == 50
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["schema"] == "nazbench-manifest/1"
    assert (manifest["run_id"], manifest["count"], manifest["seed"]) == ("run-1", 50, 7)
    assert manifest["queue"] == QUEUE
    assert manifest["id_scheme"]["first_index"] == 0
    assert manifest["started_at"] <= manifest["finished_at"]
    assert len(manifest["payload_sha256"]) == 64
    ids = (tmp_path / "ids.txt").read_text().splitlines()
    assert ids == [f"run-1/{i}" for i in range(50)]
    assert list(producer.manifest_ids(manifest)) == ids
    marker = json.loads(redis_client.get(marker_key("run-1")))
    assert marker["state"] == "done" and marker["count"] == 50


def test_rerun_is_idempotent_and_force_enqueues_again(args, redis_client, tmp_path, capsys):
    assert main(args()) == 0
    capsys.readouterr()
    assert main(args()) == 0
    assert outcome(capsys)["changed"] is False
    assert redis_client.llen(QUEUE) == 50
    assert main(args("--force")) == 0
    assert outcome(capsys)["changed"] is True
    assert redis_client.llen(QUEUE) == 100
    assert json.loads((tmp_path / "manifest.json").read_text())["passes"] == 2


def test_rerun_recreates_a_missing_manifest_without_enqueuing(args, redis_client, tmp_path):
    assert main(args()) == 0
    first = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").unlink()
    assert main(args()) == 0
    assert redis_client.llen(QUEUE) == 50
    again = json.loads((tmp_path / "manifest.json").read_text())
    assert again["payload_sha256"] == first["payload_sha256"]


@pytest.mark.parametrize("count", ["0", "-5", "abc", "1.5", ""])
def test_bad_count_is_refused_before_touching_redis(args, redis_client, tmp_path, count, capsys):
    with pytest.raises(SystemExit) as info:
        main(args(count=count))
    assert info.value.code == 2
    assert "--count" in capsys.readouterr().err
    assert redis_client.llen(QUEUE) == 0
    assert not (tmp_path / "manifest.json").exists()


@pytest.mark.parametrize("run_id", ["bad run", "a/b", "x" * 65])
def test_bad_run_id_is_refused(args, redis_client, run_id, capsys):
    with pytest.raises(SystemExit) as info:
        main(args(run_id=run_id))
    assert info.value.code == 2
    assert "run_id" in capsys.readouterr().err
    assert redis_client.dbsize() == 0


def test_unreachable_redis_is_a_clear_error(tmp_path, capsys, unused_port):
    argv = ["--run-id", "r", "-n", "5", "--manifest", str(tmp_path / "m.json")]
    assert main([*argv, "--redis-port", str(unused_port)]) == producer.EXIT_REDIS
    assert "cannot reach Redis at 127.0.0.1:" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_missing_manifest_directory_is_refused(args, redis_client, tmp_path, capsys):
    argv = args()
    argv[argv.index("--manifest") + 1] = str(tmp_path / "nope" / "m.json")
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err
    assert redis_client.llen(QUEUE) == 0


def test_existing_manifest_with_other_parameters_is_refused(args, redis_client, capsys):
    assert main(args()) == 0
    assert main(args("--seed", "99")) == 2
    assert "different parameters" in capsys.readouterr().err
    assert redis_client.llen(QUEUE) == 50


def test_marker_with_other_parameters_is_refused(args, redis_client, tmp_path, capsys):
    assert main(args()) == 0
    argv = args(count=60)
    argv[argv.index("--manifest") + 1] = str(tmp_path / "other.json")
    assert main(argv) == 2
    assert "already enqueued with different parameters" in capsys.readouterr().err
    assert redis_client.llen(QUEUE) == 50


def test_interrupted_enqueue_needs_force(args, redis_client, capsys):
    redis_client.set(
        marker_key("run-1"),
        json.dumps(
            {
                "run_id": "run-1",
                "count": 50,
                "seed": 1,
                "queue": QUEUE,
                "encoding": "gsm0338",
                "state": "enqueuing",
                "started_at": "t",
            }
        ),
    )
    assert main(args()) == producer.EXIT_INTERRUPTED
    assert "did not finish" in capsys.readouterr().err
    assert redis_client.llen(QUEUE) == 0
    assert main(args("--force")) == 0
    assert redis_client.llen(QUEUE) == 50


def test_same_seed_same_payloads_other_seed_other_payloads():
    a = list(generate(Params("r", 200, 7)))
    b = list(generate(Params("r", 200, 7)))
    c = list(generate(Params("r", 200, 8)))
    assert a == b
    assert a != c
    assert list(generate(Params("r", 20, 7))) == a[:20]


@pytest.mark.parametrize("encoding", ["gsm0338", "ascii"])
def test_messages_are_naz_submit_sms_shaped_like_the_seed(encoding):
    params = Params("run-9", 3000, 3, encoding=encoding)
    naz.codec.register_codecs()
    lengths = []
    for i, payload in enumerate(generate(params, verify_every=1)):
        msg = naz.protocol.json_to_Message(payload)
        assert isinstance(msg, naz.protocol.SubmitSM)
        assert msg.encoding == encoding
        assert msg.source_addr == "NazBenchmarksInc"
        assert re.fullmatch(r"254\d{9}", msg.destination_addr)
        assert re.fullmatch(rf"{i}-[a-z]{{7}}", msg.log_id)
        assert msg.hook_metadata == f"run-9/{i}"
        prefix = f"[nb:run-9/{i}] "
        assert msg.short_message.startswith(prefix)
        assert msgid.decode_body(msg.short_message) == f"run-9/{i}"
        text = msg.short_message[len(prefix) :]
        assert re.fullmatch(r"[A-Za-z0-9.-]{1,200}", text)
        lengths.append(len(text))
        assert payload == naz.protocol.SubmitSM.from_json(payload).to_json()
    assert min(lengths) == 1 and max(lengths) == 200


def test_long_run_ids_keep_short_message_within_254_octets():
    naz.codec.register_codecs()
    for payload in generate(Params("x" * 64, 300, 1, encoding="gsm0338")):
        msg = naz.protocol.json_to_Message(payload)
        assert len(codecs.encode(msg.short_message, "gsm0338")) <= 254


def test_queue_is_consumed_oldest_first(args, redis_client):
    assert main(args()) == 0
    first = json.loads(redis_client.rpop(QUEUE))
    assert first["hook_metadata"] == "run-1/0"
    assert json.loads(redis_client.lpop(QUEUE))["hook_metadata"] == "run-1/49"


def test_progress_goes_to_stderr_for_large_runs(args, capsys):
    argv = [a for a in args(count=10_000) if a != "--quiet"]
    assert main([*argv, "--chunk-size", "1000"]) == 0
    captured = capsys.readouterr()
    assert "enqueued 10000/10000 (100%)" in captured.err
    assert json.loads(captured.out)["enqueued"] == 10_000


def test_fast_serialisation_mismatch_is_detected(monkeypatch):
    monkeypatch.setattr(producer, "naz_payload", lambda *a: "different")
    with pytest.raises(producer.ProducerError, match="differs"):
        next(generate(Params("r", 1, 1)))


def test_fast_serialisation_is_checked_against_naz_per_message(monkeypatch):
    real = producer.naz_payload

    def drifted(params, short_message, *rest):
        out = real(params, short_message, *rest)
        return out if short_message.startswith("\x01") else out.replace('"version": 1', '"v": 1')

    monkeypatch.setattr(producer, "naz_payload", drifted)
    with pytest.raises(producer.ProducerError, match="message 0"):
        next(generate(Params("r", 1, 1)))
