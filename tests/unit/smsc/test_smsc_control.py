"""The control channel (``--control-socket``) and the SMSC's behaviour modes.

The SMSC runs in-process on its own event loop (``Served``); smpplib is the ESME where it
can say what a case needs, raw sockets (our codec, answers decoded by smpplib) where it
cannot: several PDUs in one write, or reading nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import smpplib.consts
import smpplib.exceptions

from nazbench.smsc import pdu
from nazbench.smsc.cli import config_from_args, make_parser
from nazbench.smsc.control import MAX_REQUEST, request
from nazbench.smsc.control import answer as control_answer
from nazbench.smsc.modes import MODES
from nazbench.smsc.modes import NORMAL as NORMAL_MODE
from nazbench.smsc.server import SmscConfig

from .conftest import PASSWORD, SYSTEM_ID, make_smsc, read_ledger, run
from .test_smsc_receipts import Esme
from .test_smsc_smpplib import (
    Raw,
    Served,
    answer,
    answer_unbind,
    bound_client,
    closed_by_server,
    drop,
    new_client,
    serving,
    submit,
)

NORMAL = {"ok": True, "mode": {"name": "normal"}}
QUIET = 0.3  # seconds of "no answer comes"
SLOW = 3.0  # upper bound of a wait (CI runs two cores busy)


@pytest.fixture
def config(config: SmscConfig, tmp_path: Path) -> SmscConfig:
    return dataclasses.replace(config, control_socket=tmp_path / "control.sock")


def control(served: Served, obj: Any) -> dict[str, Any]:
    return request(served.smsc.config.control_socket, obj)


def set_mode(served: Served, **mode: Any) -> dict[str, Any]:
    reply = control(served, {"op": "set", "mode": mode})
    assert reply["ok"], reply
    return reply


def raw_line(path: Path, data: bytes, shut: bool = False) -> dict[str, Any]:
    """Send ``data`` as it is to the control socket; its one-line answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.endswith(b"\n") and reply.count(b"\n") == 1, reply
    return json.loads(reply)


def raw_bound(served: Served) -> Raw:
    raw = Raw(served.port)
    raw.send(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, SYSTEM_ID, PASSWORD))
    assert answer(raw.read()) == ("bind_transceiver_resp", 0, 1)
    return raw


def nothing_comes(raw: Raw, seconds: float = QUIET) -> bool:
    """True when no byte arrives (and the connection stays open) for ``seconds``."""
    raw.sock.settimeout(seconds)
    try:
        raw.sock.recv(1)
    except TimeoutError:
        return True
    finally:
        raw.sock.settimeout(2)
    return False


def mode_gauge(served: Served) -> dict[str, float]:
    return {name: served.metric("nazbench_smsc_mode", mode=name) for name in MODES}


def sm(seq: int, tag: str) -> bytes:
    return pdu.encode_submit_sm(seq, f"[nb:{tag}] x".encode(), registered_delivery=0)


# -- the channel -----------------------------------------------------------------------


def test_get_answers_normal_and_every_mode_has_a_gauge(
    config: SmscConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nazbench.smsc")
    with serving(config) as served:
        assert control(served, {"op": "get"}) == NORMAL
        assert mode_gauge(served) == {name: (name == "normal") for name in MODES}
        assert len(MODES) == 6
    assert f"control channel on {config.control_socket} (mode normal)" in caplog.text


def test_set_answers_the_mode_and_the_previous_one_logs_and_moves_the_gauge(
    config: SmscConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nazbench.smsc")
    with serving(config) as served:
        reply = set_mode(served, name="throttle", fraction=0.5)
        assert reply == {
            "ok": True,
            "mode": {"name": "throttle", "fraction": 0.5},
            "previous": {"name": "normal"},
        }
        assert mode_gauge(served) == {name: (name == "throttle") for name in MODES}
        reply = set_mode(served, name="slow")  # the default delay
        assert reply["mode"] == {"name": "slow", "delay_s": 5.0}
        assert reply["previous"] == {"name": "throttle", "fraction": 0.5}
        assert control(served, {"op": "get"}) == {"ok": True, "mode": reply["mode"]}
        assert set_mode(served, name="normal")["mode"] == {"name": "normal"}
        assert mode_gauge(served) == {name: (name == "normal") for name in MODES}
    assert 'control: mode throttle {"fraction": 0.5} (was normal)' in caplog.text
    assert 'control: mode slow {"delay_s": 5.0} (was throttle {"fraction": 0.5})' in caplog.text
    assert 'control: mode normal (was slow {"delay_s": 5.0})' in caplog.text


BAD_REQUESTS = [
    (b"not json\n", "request is not JSON"),
    (b"\n", "request is not JSON"),
    (b"[1, 2]\n", "request must be a JSON object, got list"),
    (b'"get"\n', "request must be a JSON object, got str"),
    (b"{}\n", "unknown op None"),
    (b'{"op": "put"}\n', "unknown op 'put'"),
    (b'{"op": "get", "mode": {"name": "normal"}}\n', "op get takes no other keys"),
    (b'{"op": "set"}\n', 'op set needs "mode"'),
    (b'{"op": "set", "mode": {"name": "normal"}, "force": true}\n', "op set takes only"),
    (b'{"op": "get", "op": "set"}\n', "key 'op' given twice"),
    (b'{"op": "set", "mode": "silent"}\n', "a mode is an object"),
    (b'{"op": "set", "mode": {"name": "fast"}}\n', "unknown mode 'fast'"),
    (b'{"op": "set", "mode": {}}\n', "unknown mode None"),
    (b'{"op": "set", "mode": {"name": "silent", "fraction": 1}}\n', "unknown parameter"),
    (b'{"op": "set", "mode": {"name": "throttle", "fraction": 0}}\n', "fraction must be > 0"),
    (b'{"op": "set", "mode": {"name": "throttle", "fraction": 1.01}}\n', "<= 1"),
    (b'{"op": "set", "mode": {"name": "drop_resp", "fraction": -0.5}}\n', "must be > 0"),
    (b'{"op": "set", "mode": {"name": "drop_resp", "fraction": true}}\n', "must be a number"),
    (b'{"op": "set", "mode": {"name": "drop_resp", "fraction": "1"}}\n', "must be a number"),
    (b'{"op": "set", "mode": {"name": "slow", "delay_s": null}}\n', "must be a number"),
    (b'{"op": "set", "mode": {"name": "slow", "delay_s": 0}}\n', "delay_s must be > 0"),
    (b'{"op": "set", "mode": {"name": "slow", "delay_s": 60.5}}\n', "<= 60"),
    (b'{"op": "set", "mode": {"name": "slow", "delay_s": NaN}}\n', "NaN is not a number"),
    (b'{"op": "set", "mode": {"name": "slow", "delay_s": -Infinity}}\n', "-Infinity is not"),
    (b'{"op": "set", "mode": {"name": "slow", "delay_s": 1e999}}\n', "finite"),
    (b'{"op": "set", "mode": {"name": "slow", "delay_s": 1' + b"0" * 400 + b"}}\n", "finite"),
    (b'{"op": "\xff"}\n', "request is not UTF-8"),
    (b'{"op": "get", "pad": "' + b"x" * MAX_REQUEST + b'"}\n', "longer than 4096 bytes"),
    (b'{"op": "get"}', "request must end with a newline"),  # then EOF
]


@pytest.mark.parametrize(("data", "says"), BAD_REQUESTS, ids=range(len(BAD_REQUESTS)))
def test_bad_requests_are_refused_and_leave_the_mode(
    config: SmscConfig, data: bytes, says: str
) -> None:
    with serving(config) as served:
        before = set_mode(served, name="slow", delay_s=7)["mode"]
        reply = raw_line(config.control_socket, data, shut=True)
        assert reply["ok"] is False
        assert says in reply["error"]
        assert control(served, {"op": "get"}) == {"ok": True, "mode": before}
        assert mode_gauge(served)["slow"] == 1


def test_a_request_of_exactly_the_limit_is_served(config: SmscConfig) -> None:
    line = b'{"op": "get"' + b" " * (MAX_REQUEST - 13) + b"}"
    assert len(line) == MAX_REQUEST
    with serving(config) as served:
        assert raw_line(config.control_socket, line + b"\n") == NORMAL
        too_long = raw_line(config.control_socket, line + b" \n")
        assert too_long == {"ok": False, "error": "request longer than 4096 bytes"}
        assert control(served, {"op": "get"}) == NORMAL


def test_socket_is_0600_replaces_a_stale_one_and_is_removed_on_stop(config: SmscConfig) -> None:
    path = config.control_socket
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # a socket file nobody listens on: a crashed SMSC's
    stale.close()
    assert stat.S_ISSOCK(path.lstat().st_mode)
    with serving(config) as served:
        st = path.lstat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert control(served, {"op": "get"}) == NORMAL
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        request(path, {"op": "get"})


def test_a_file_that_is_not_a_socket_is_not_replaced(config: SmscConfig) -> None:
    path = config.control_socket
    path.write_text("keep me")
    smsc = make_smsc(config)
    with pytest.raises(FileExistsError, match="not a socket"):
        run(smsc.start())
    assert path.read_text() == "keep me"


def test_no_control_socket_by_default(config: SmscConfig, tmp_path: Path) -> None:
    with serving(config, control_socket=None) as served:
        assert served.smsc.control is None
        assert not (tmp_path / "control.sock").exists()


def test_a_fresh_process_starts_normal(config: SmscConfig) -> None:
    with serving(config) as served:
        set_mode(served, name="silent")
    with serving(config) as served:
        assert control(served, {"op": "get"}) == NORMAL
        assert served.metric("nazbench_smsc_mode", mode="silent") == 0


def test_cli_flag(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(PASSWORD)
    parser = make_parser()
    base = ["--password-file", str(tmp_path / "pw"), "--ledger", str(tmp_path / "l")]
    args = parser.parse_args(base)
    assert config_from_args(parser, args).control_socket is None
    args = parser.parse_args([*base, "--control-socket", "/run/nazbench-smsc/control.sock"])
    assert config_from_args(parser, args).control_socket == Path("/run/nazbench-smsc/control.sock")
    args = parser.parse_args([*base, "--control-socket", "/" + "x" * 107])
    with pytest.raises(SystemExit):
        config_from_args(parser, args)


# -- throttle ---------------------------------------------------------------------------


def test_throttle_answers_rthrottled_recorded_without_message_id_then_normal(
    config: SmscConfig,
) -> None:
    with serving(config) as served:
        client = bound_client(served.port)  # bound before: switches at once
        assert submit(client, short_message=b"[nb:th/0] x").status == 0
        set_mode(served, name="throttle")  # fraction 1.0
        throttled = submit(client, short_message=b"[nb:th/1] x")
        assert throttled.status == smpplib.consts.SMPP_ESME_RTHROTTLED == 0x58
        assert not throttled.message_id
        set_mode(served, name="normal")
        ok = submit(client, short_message=b"[nb:th/2] x")
        assert ok.status == 0 and ok.message_id
        client.unbind()
        drop(client)
        submits = "nazbench_smsc_submit_sm_total"
        assert served.metric(submits, command_status="ESME_RTHROTTLED") == 1
        assert served.metric(submits, command_status="ESME_ROK") == 2
    lines = read_ledger(config.ledger_path)
    assert [(x["msg_id"], x["command_status"]) for x in lines] == [
        ("th/0", 0),
        ("th/1", 0x58),
        ("th/2", 0),
    ]
    assert lines[1]["message_id"] is None
    assert lines[2]["message_id"] == ok.message_id.decode()


def test_throttle_fraction_is_drawn_with_the_seeded_rng(config: SmscConfig) -> None:
    def statuses() -> list[int]:
        with serving(config, seed=7) as served:
            set_mode(served, name="throttle", fraction=0.5)
            raw = raw_bound(served)
            raw.send(b"".join(sm(10 + i, f"tf/{i}") for i in range(100)))
            got = [raw.read().status for _ in range(100)]
            raw.close()
        return got

    first = statuses()
    assert set(first) == {0, 0x58}
    assert 25 < first.count(0x58) < 75
    config.ledger_path.unlink()
    assert statuses() == first


# -- slow -------------------------------------------------------------------------------


def test_slow_delays_every_answer_in_order_and_the_ledger_waits_too(config: SmscConfig) -> None:
    delay = 0.5
    with serving(config) as served:
        raw = raw_bound(served)
        set_mode(served, name="slow", delay_s=delay)
        start = time.monotonic()
        raw.send(sm(2, "sl/0"))
        raw.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 3))
        raw.send(sm(4, "sl/1"))
        time.sleep(delay / 3)
        assert served.metric("nazbench_smsc_ledger_lines_written_total") == 0
        got = [answer(raw.read()) for _ in range(3)]
        assert time.monotonic() - start >= delay
        assert got == [
            ("submit_sm_resp", 0, 2),
            ("enquire_link_resp", 0, 3),
            ("submit_sm_resp", 0, 4),
        ]
        # a new bind is slow too
        late = Raw(served.port)
        start = time.monotonic()
        late.send(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 9, SYSTEM_ID, PASSWORD))
        assert answer(late.read()) == ("bind_transceiver_resp", 0, 9)
        assert delay <= time.monotonic() - start < SLOW
        for each in (raw, late):
            each.close()
    lines = read_ledger(config.ledger_path)
    assert [x["msg_id"] for x in lines] == ["sl/0", "sl/1"]


def test_normal_after_slow_does_not_overtake_answers_still_delayed(config: SmscConfig) -> None:
    delay = 0.5
    with serving(config) as served:
        raw = raw_bound(served)
        set_mode(served, name="slow", delay_s=delay)
        start = time.monotonic()
        raw.send(sm(2, "ov/0"))
        served.wait_for(
            lambda: served.metric("nazbench_smsc_pdus_received_total", command="submit_sm") == 1
        )
        set_mode(served, name="normal")
        raw.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 3))
        first = raw.read()
        elapsed = time.monotonic() - start
        assert answer(first) == ("submit_sm_resp", 0, 2)
        assert answer(raw.read()) == ("enquire_link_resp", 0, 3)
        assert elapsed >= delay
        # nothing queued any more: answers are at once again
        start = time.monotonic()
        raw.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 4))
        assert answer(raw.read()) == ("enquire_link_resp", 0, 4)
        assert time.monotonic() - start < delay
        raw.close()


# -- silent -----------------------------------------------------------------------------


def test_silent_answers_nothing_and_records_nothing_then_normal_answers(
    config: SmscConfig,
) -> None:
    with serving(config) as served:
        raw = raw_bound(served)
        set_mode(served, name="silent")
        raw.send(sm(2, "si/0") + pdu.encode_pdu(pdu.ENQUIRE_LINK, 3) + pdu.encode_pdu(0x99, 4))
        newcomer = Raw(served.port)  # a bind is not answered either
        newcomer.send(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 5, SYSTEM_ID, PASSWORD))
        raw.send(pdu.encode_pdu(pdu.UNBIND, 6))
        assert nothing_comes(raw)
        assert nothing_comes(newcomer)
        unanswered = "nazbench_smsc_unanswered_total"
        assert served.metric(unanswered, command="submit_sm") == 1
        assert served.metric(unanswered, command="enquire_link") == 1
        assert served.metric(unanswered, command="unknown") == 1
        assert served.metric(unanswered, command="bind_transceiver") == 1
        assert served.metric(unanswered, command="unbind") == 1
        assert served.metric("nazbench_smsc_submit_sm_total", command_status="ESME_ROK") == 0
        assert served.metric("nazbench_smsc_ledger_lines_written_total") == 0
        assert served.metric("nazbench_smsc_bound_sessions") == 1  # the unbind was not heard

        set_mode(served, name="normal")
        raw.send(sm(7, "si/1"))
        assert answer(raw.read()) == ("submit_sm_resp", 0, 7)  # the first one answered
        newcomer.send(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 8, SYSTEM_ID, PASSWORD))
        assert answer(newcomer.read()) == ("bind_transceiver_resp", 0, 8)
        for each in (raw, newcomer):
            each.close()
    assert [x["msg_id"] for x in read_ledger(config.ledger_path)] == ["si/1"]


def test_silent_holds_receipts_until_it_ends(config: SmscConfig) -> None:
    with serving(config, receipts=True, receipt_delay=0.1, unbind_timeout=0.05) as served:
        esme = Esme(bound_client(served.port))
        esme.submit(b"[nb:sr/0] later")
        esme.until(receipts=0, answers=1)
        set_mode(served, name="silent")
        assert esme.nothing_within(QUIET + 0.1)  # due after 0.1 s, held
        assert served.metric("nazbench_smsc_receipts_pending") == 1
        assert served.metric("nazbench_smsc_receipts_sent_total", stat="DELIVRD") == 0
        set_mode(served, name="normal")
        esme.until(receipts=1)
        receipted = esme.delivered[0].receipted_message_id.decode()
        assert receipted == esme.message_ids[0]
        served.wait_for(lambda: served.metric("nazbench_smsc_receipts_pending") == 0)
        drop(esme.client)


def test_silent_sends_no_generic_nack_for_an_impossible_length(config: SmscConfig) -> None:
    with serving(config) as served:
        raw = raw_bound(served)
        set_mode(served, name="silent")
        raw.send(b"\x00\x00\x00\x08junk")
        assert raw.closed_by_server()  # the stream cannot be framed: closed, not answered
        raw.close()
        assert (
            served.metric("nazbench_smsc_generic_nacks_total", command_status="ESME_RINVCMDLEN")
            == 0
        )


# -- drop_resp --------------------------------------------------------------------------


def test_drop_resp_records_the_submit_closes_and_sends_only_what_came_before(
    config: SmscConfig,
) -> None:
    with serving(config) as served:
        raw = raw_bound(served)
        set_mode(served, name="drop_resp")
        # one write: an enquire_link, the submit_sm whose answer is dropped, one more each
        raw.send(
            pdu.encode_pdu(pdu.ENQUIRE_LINK, 2)
            + sm(3, "dr/0")
            + pdu.encode_pdu(pdu.ENQUIRE_LINK, 4)
            + sm(5, "dr/1")
        )
        assert answer(raw.read()) == ("enquire_link_resp", 0, 2)
        with pytest.raises(EOFError):
            raw.read()  # closed: no submit_sm_resp, nothing after it
        raw.close()
        served.wait_for(
            lambda: served.metric("nazbench_smsc_sessions_closed_total", reason="drop_resp") == 1
        )
        assert served.metric("nazbench_smsc_responses_dropped_total") == 1
        assert served.metric("nazbench_smsc_submit_sm_total", command_status="ESME_ROK") == 1
    [line] = read_ledger(config.ledger_path)
    assert (line["sequence_number"], line["msg_id"], line["command_status"]) == (3, "dr/0", 0)
    assert line["message_id"]


def test_drop_resp_with_smpplib_and_the_receipt_still_comes(config: SmscConfig) -> None:
    with serving(config, receipts=True, receipt_delay=0.05, unbind_timeout=0.05) as served:
        dropped = Esme(bound_client(served.port))
        set_mode(served, name="drop_resp", fraction=1)
        dropped.submit(b"[nb:dd/0] once")
        with pytest.raises(smpplib.exceptions.ConnectionError):
            dropped.client.read_pdu()
        assert dropped.message_ids == []
        drop(dropped.client)
        set_mode(served, name="normal")
        again = Esme(bound_client(served.port))  # the receipt waited for this bind
        again.until(receipts=1)
        [line] = [x for x in read_ledger(config.ledger_path) if "record" not in x]
        assert again.delivered[0].receipted_message_id.decode() == line["message_id"]
        assert line["msg_id"] == "dd/0"
        drop(again.client)


def test_drop_resp_fraction_answers_until_the_first_drop(config: SmscConfig) -> None:
    with serving(config, seed=5) as served:  # the seed draws 6 answers, then a drop
        raw = raw_bound(served)
        set_mode(served, name="drop_resp", fraction=0.3)
        raw.send(b"".join(sm(10 + i, f"df/{i}") for i in range(40)))
        answered = []
        with pytest.raises(EOFError):
            while True:
                answered.append(answer(raw.read()))
        raw.close()
    n = len(answered)
    assert n == 6
    assert answered == [("submit_sm_resp", 0, 10 + i) for i in range(n)]
    lines = read_ledger(config.ledger_path)
    # the answered ones and the dropped one; none after it
    assert [x["sequence_number"] for x in lines] == [10 + i for i in range(n + 1)]
    assert all(x["command_status"] == 0 and x["message_id"] for x in lines)


# -- unbind -----------------------------------------------------------------------------


def test_unbind_unbinds_bound_sessions_and_every_new_bind(config: SmscConfig) -> None:
    with serving(config, unbind_timeout=SLOW) as served:
        client = bound_client(served.port)
        unbound = new_client(served.port)  # not bound: left alone
        set_mode(served, name="unbind")
        unbind = client.read_pdu()
        assert (unbind.command, unbind.status) == ("unbind", 0)
        answer_unbind(client, unbind)
        assert closed_by_server(client)
        drop(client)

        late = bound_client(served.port)  # asserts the bind_resp is ESME_ROK ...
        unbind = late.read_pdu()
        assert unbind.command == "unbind"  # ... then the unbind comes
        answer_unbind(late, unbind)
        assert closed_by_server(late)
        drop(late)
        unbound._socket.settimeout(QUIET)
        with pytest.raises(TimeoutError):
            unbound.read_pdu()
        drop(unbound)

        set_mode(served, name="normal")
        kept = bound_client(served.port)
        kept._socket.settimeout(QUIET)
        with pytest.raises(TimeoutError):
            kept.read_pdu()  # no unbind any more
        kept._socket.settimeout(2)
        assert submit(kept, short_message=b"[nb:ub/0] x").status == 0
        drop(kept)
        served.wait_for(
            lambda: served.metric("nazbench_smsc_sessions_closed_total", reason="unbind_mode") == 2
        )
        assert served.metric("nazbench_smsc_unbinds_sent_total", reason="unbind_mode") == 2


def test_a_submit_in_the_same_write_as_the_bind_is_answered_before_the_unbind(
    config: SmscConfig,
) -> None:
    with serving(config) as served:
        set_mode(served, name="unbind")
        raw = Raw(served.port)
        raw.send(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, SYSTEM_ID, PASSWORD) + sm(2, "ub/1"))
        got = [raw.read() for _ in range(3)]
        assert [answer(p)[:2] for p in got] == [
            ("bind_transceiver_resp", 0),
            ("submit_sm_resp", 0),
            ("unbind", 0),
        ]
        raw.send(pdu.encode_pdu(pdu.UNBIND_RESP, got[2].sequence))
        assert raw.closed_by_server()
        raw.close()


def test_stop_in_a_fault_mode_answers_and_unbinds_as_normal(config: SmscConfig) -> None:
    with serving(config, unbind_timeout=0.1) as served:
        raw = raw_bound(served)
        set_mode(served, name="silent")
        served.stop_in_background().result(SLOW)
        assert answer(raw.read())[0] == "unbind"
        raw.close()
        assert served.smsc.mode.name == "normal"
        assert not config.control_socket.exists()


def test_a_failed_start_leaves_no_control_socket(config: SmscConfig) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        smsc = make_smsc(dataclasses.replace(config, port=busy.getsockname()[1]))
        with pytest.raises(OSError, match="address already in use"):
            run(smsc.start())
    assert not config.control_socket.exists()


def test_a_set_while_the_smsc_stops_is_refused() -> None:
    """A control connection accepted before the stop must not put a mode back after it."""

    class Stopping:
        mode = NORMAL_MODE
        stopping = True

        def set_mode(self, mode):  # pragma: no cover - must not be called
            raise AssertionError(f"set_mode({mode}) during a stop")

    reply = control_answer(Stopping(), b'{"op": "set", "mode": {"name": "silent"}}')
    assert reply == {"ok": False, "error": "the SMSC is stopping; its mode stays normal"}
    assert control_answer(Stopping(), b'{"op": "get"}') == NORMAL
