"""The server over real loopback sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import time

import pytest

from nazbench.smsc import pdu
from nazbench.smsc import server as server_module
from nazbench.smsc.server import SmscConfig

from .conftest import PASSWORD, RawClient, body, make_smsc, metric, read_ledger, run


@pytest.mark.parametrize(
    ("command_id", "mode"),
    [
        (pdu.BIND_TRANSCEIVER, "transceiver"),
        (pdu.BIND_TRANSMITTER, "transmitter"),
        (pdu.BIND_RECEIVER, "receiver"),
    ],
)
def test_bind_ok(config: SmscConfig, command_id: int, mode: str) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            resp = await client.bind(command_id=command_id)
            assert resp.command_id == command_id | pdu.RESPONSE_BIT
            assert resp.command_status == pdu.ESME_ROK
            assert resp.sequence_number == client.seq
            assert resp.body == b"nazbench-smsc\x00"
            assert metric(smsc, "nazbench_smsc_binds_total", mode=mode, result="ESME_ROK") == 1
            assert metric(smsc, "nazbench_smsc_bound_sessions") == 1
            again = await client.bind(command_id=command_id)
            assert again.command_status == pdu.ESME_RALYBND
            await client.close()

    run(scenario())


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        ("nazbench", "wrong", pdu.ESME_RINVPASWD),
        ("nazbench", "", pdu.ESME_RINVPASWD),
        ("other", PASSWORD, pdu.ESME_RINVSYSID),
    ],
)
def test_bad_credentials_refuse_the_bind_and_leave_the_session_unbound(
    config: SmscConfig, system_id: str, password: str, status: int
) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            resp = await client.bind(system_id=system_id, password=password)
            assert (resp.command_id, resp.command_status) == (pdu.BIND_TRANSCEIVER_RESP, status)
            assert resp.body == b""
            refused = await client.submit("[nb:r/1] x")
            assert refused.command_status == pdu.ESME_RINVBNDSTS
            # still open and bindable with the right credentials
            assert (await client.bind()).command_status == pdu.ESME_ROK
            assert (await client.submit("[nb:r/2] x")).command_status == pdu.ESME_ROK
            name = pdu.status_name(status)
            assert metric(smsc, "nazbench_smsc_binds_total", mode="transceiver", result=name) == 1
            await client.close()

    run(scenario())


def test_submit_before_bind_and_from_a_receiver_is_refused_and_recorded(
    config: SmscConfig,
) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            first = await client.submit("[nb:r/1] x")
            assert (first.command_id, first.command_status) == (
                pdu.SUBMIT_SM_RESP,
                pdu.ESME_RINVBNDSTS,
            )
            assert first.body == b""
            assert (await client.bind(command_id=pdu.BIND_RECEIVER)).command_status == 0
            second = await client.submit("[nb:r/2] x")
            assert second.command_status == pdu.ESME_RINVBNDSTS
            await client.close()

    run(scenario())
    lines = read_ledger(config.ledger_path)
    assert [(x["msg_id"], x["message_id"], x["command_status"]) for x in lines] == [
        ("r/1", None, pdu.ESME_RINVBNDSTS),
        ("r/2", None, pdu.ESME_RINVBNDSTS),
    ]


def test_1000_pipelined_submits_in_one_write(config: SmscConfig) -> None:
    count = 1000

    async def scenario() -> list[pdu.Pdu]:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            first_seq = client.seq + 1
            stream = b"".join(
                pdu.encode_submit_sm(first_seq + i, body(f"[nb:pipe/{i}] m")) for i in range(count)
            )
            await client.send(stream)
            resps = await client.read_pdus(count)
            assert [r.sequence_number for r in resps] == list(range(first_seq, first_seq + count))
            assert metric(smsc, "nazbench_smsc_pdus_received_total", command="submit_sm") == count
            assert metric(smsc, "nazbench_smsc_submit_sm_total", command_status="ESME_ROK") == count
            assert metric(smsc, "nazbench_smsc_ledger_lines_written_total") == count
            await client.close()
            return resps

    resps = run(scenario())
    assert all(r.command_id == pdu.SUBMIT_SM_RESP and r.command_status == 0 for r in resps)
    ids = [pdu.parse_submit_sm_resp(r.body) for r in resps]
    assert len(set(ids)) == count
    assert all(0 < len(i) <= 64 for i in ids)
    lines = read_ledger(config.ledger_path)
    assert [x["msg_id"] for x in lines] == [f"pipe/{i}" for i in range(count)]
    assert [x["message_id"] for x in lines] == ids
    assert [x["sequence_number"] for x in lines] == [r.sequence_number for r in resps]
    assert {x["command_status"] for x in lines} == {0}
    assert len({x["session"] for x in lines}) == 1
    assert all(isinstance(x["ts"], float) and abs(x["ts"] - time.time()) < 60 for x in lines)


def test_pdus_split_byte_by_byte(config: SmscConfig) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            stream = (
                pdu.encode_bind(pdu.BIND_TRANSCEIVER, 2, "nazbench", PASSWORD)
                + pdu.encode_submit_sm(3, b"[nb:slow/0] a")
                + pdu.encode_pdu(pdu.ENQUIRE_LINK, 4)
                + pdu.encode_submit_sm(5, b"[nb:slow/1] b")
            )
            for i in range(len(stream)):
                await client.send(stream[i : i + 1])
                await asyncio.sleep(0)
            resps = await client.read_pdus(4)
            assert [(r.command_id, r.command_status, r.sequence_number) for r in resps] == [
                (pdu.BIND_TRANSCEIVER_RESP, 0, 2),
                (pdu.SUBMIT_SM_RESP, 0, 3),
                (pdu.ENQUIRE_LINK_RESP, 0, 4),
                (pdu.SUBMIT_SM_RESP, 0, 5),
            ]
            await client.close()

    run(scenario())
    assert [x["msg_id"] for x in read_ledger(config.ledger_path)] == ["slow/0", "slow/1"]


@pytest.mark.parametrize(
    ("garbage", "kind"),
    [
        (b"\x00\x00\x00\x05garbage-garbage-garbage", "bad_length"),
        (struct.pack(">IIII", 0x7FFFFFFF, pdu.SUBMIT_SM, 0, 1), "bad_length"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_length"),
    ],
    ids=["length-5", "length-2GiB", "http"],
)
def test_garbage_closes_only_that_session(config: SmscConfig, garbage: bytes, kind: str) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            good = await RawClient.connect(smsc.port)
            assert (await good.bind()).command_status == 0
            bad = await RawClient.connect(smsc.port)
            assert (await bad.bind()).command_status == 0
            await bad.send(garbage)
            assert await bad.closed_by_peer()
            assert (await good.submit("[nb:g/1] still here")).command_status == 0
            assert metric(smsc, "nazbench_smsc_malformed_streams_total", kind=kind) == 1
            assert metric(smsc, "nazbench_smsc_sessions_closed_total", reason="malformed") == 1
            assert metric(smsc, "nazbench_smsc_active_sessions") == 1
            # and new sessions are still accepted
            late = await RawClient.connect(smsc.port)
            assert (await late.bind()).command_status == 0
            for client in (good, late, bad):
                await client.close()

    run(scenario())


def test_pdus_before_the_garbage_in_the_same_read_are_answered(config: SmscConfig) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            await client.send(pdu.encode_submit_sm(10, b"[nb:b/1] x") + b"\x00\x00\x00\x01junk")
            resp = await client.read_pdu()
            assert (resp.sequence_number, resp.command_status) == (10, 0)
            assert await client.closed_by_peer()
            await client.close()

    run(scenario())
    assert [x["msg_id"] for x in read_ledger(config.ledger_path)] == ["b/1"]


def test_connection_ending_inside_a_pdu_is_counted_as_truncated(config: SmscConfig) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            await client.send(pdu.encode_submit_sm(2, b"[nb:t/1] x")[:30])
            client.writer.write_eof()
            assert await client.closed_by_peer()
            await client.close()
            await asyncio.sleep(0.05)
            assert metric(smsc, "nazbench_smsc_malformed_streams_total", kind="truncated") == 1

    run(scenario())


def test_unknown_command_gets_generic_nack_a_bad_submit_body_its_resp_and_session_lives_on(
    config: SmscConfig,
) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            await client.send(pdu.encode_pdu(0x00000099, 11))
            await client.send(pdu.encode_pdu(pdu.QUERY_SM, 12, b"1\x00\x00\x00\x00"))
            await client.send(pdu.encode_pdu(pdu.SUBMIT_SM, 13, b"CMT"))  # no NUL
            await client.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 14, b"x"))  # body not allowed
            nacks = await client.read_pdus(4)
            assert [(n.command_id, n.command_status, n.sequence_number) for n in nacks] == [
                (pdu.GENERIC_NACK, pdu.ESME_RINVCMDID, 11),
                (pdu.GENERIC_NACK, pdu.ESME_RINVCMDID, 12),
                (pdu.SUBMIT_SM_RESP, pdu.ESME_RINVCMDLEN, 13),
                (pdu.GENERIC_NACK, pdu.ESME_RINVCMDLEN, 14),
            ]
            assert (await client.submit("[nb:n/1] x")).command_status == 0
            assert (
                metric(smsc, "nazbench_smsc_generic_nacks_total", command_status="ESME_RINVCMDID")
                == 2
            )
            assert metric(smsc, "nazbench_smsc_pdus_received_total", command="unknown") == 1
            await client.close()

    run(scenario())


def test_responses_from_the_client_are_accepted_silently(config: SmscConfig) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            await client.send(pdu.encode_pdu(pdu.DELIVER_SM_RESP, 50, b"\x00"))
            await client.send(pdu.encode_pdu(pdu.ENQUIRE_LINK_RESP, 51))
            await client.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 52))
            resp = await client.read_pdu()  # only the enquire_link is answered
            assert (resp.command_id, resp.sequence_number) == (pdu.ENQUIRE_LINK_RESP, 52)
            assert metric(smsc, "nazbench_smsc_pdus_received_total", command="deliver_sm_resp") == 1
            await client.close()

    run(scenario())


def test_enquire_link_before_and_after_bind(config: SmscConfig) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            await client.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 77))
            resp = await client.read_pdu()
            assert (resp.command_id, resp.command_status, resp.sequence_number) == (
                pdu.ENQUIRE_LINK_RESP,
                0,
                77,
            )
            assert (await client.bind()).command_status == 0
            await client.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 78))
            assert (await client.read_pdu()).sequence_number == 78
            await client.close()

    run(scenario())


def test_unbind_answers_then_closes(config: SmscConfig) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            # anything after the unbind in the same write is ignored
            await client.send(pdu.encode_pdu(pdu.UNBIND, 30) + pdu.encode_pdu(pdu.ENQUIRE_LINK, 31))
            resp = await client.read_pdu()
            assert (resp.command_id, resp.command_status, resp.sequence_number) == (
                pdu.UNBIND_RESP,
                0,
                30,
            )
            assert await client.closed_by_peer()
            await client.close()
            await asyncio.sleep(0.05)
            assert metric(smsc, "nazbench_smsc_sessions_closed_total", reason="unbind") == 1
            assert metric(smsc, "nazbench_smsc_bound_sessions") == 0
            assert metric(smsc, "nazbench_smsc_active_sessions") == 0

    run(scenario())


def test_ledger_line_is_in_the_file_when_the_response_arrives(config: SmscConfig) -> None:
    async def scenario() -> None:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            for i in range(5):
                resp = await client.submit(f"[nb:d/{i}] x")
                # read while the server is still running: no flush-on-close involved
                lines = read_ledger(config.ledger_path)
                assert len(lines) == i + 1
                assert lines[-1]["message_id"] == pdu.parse_submit_sm_resp(resp.body)
                assert lines[-1]["msg_id"] == f"d/{i}"
            await client.close()

    run(scenario())


def _statuses(config: SmscConfig, count: int) -> list[int]:
    async def scenario() -> list[int]:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            first = client.seq + 1
            await client.send(
                b"".join(pdu.encode_submit_sm(first + i, b"[nb:e/1] x") for i in range(count))
            )
            resps = await client.read_pdus(count)
            await client.close()
            return [r.command_status for r in resps]

    return run(scenario())


def test_error_fraction_is_reproducible_with_a_seed(config: SmscConfig, tmp_path) -> None:
    seeded = dataclasses.replace(config, error_fraction=0.25, seed=1234)
    first = _statuses(seeded, 400)
    again = _statuses(dataclasses.replace(seeded, ledger_path=tmp_path / "other.jsonl"), 400)
    other_seed = _statuses(dataclasses.replace(seeded, seed=99), 400)
    assert first == again
    assert first != other_seed
    assert set(first) == {0, pdu.ESME_RTHROTTLED}
    assert 60 <= first.count(pdu.ESME_RTHROTTLED) <= 140  # 100 expected
    lines = read_ledger(config.ledger_path)
    errors = [x for x in lines if x["command_status"] == pdu.ESME_RTHROTTLED]
    assert errors
    assert all(x["message_id"] is None and x["msg_id"] == "e/1" for x in errors)


def test_error_fraction_bounds_and_custom_status(config: SmscConfig) -> None:
    assert set(_statuses(dataclasses.replace(config, error_fraction=1.0, seed=1), 50)) == {0x58}
    custom = dataclasses.replace(config, error_fraction=1.0, error_status=pdu.ESME_RMSGQFUL)
    assert set(_statuses(custom, 5)) == {pdu.ESME_RMSGQFUL}
    assert set(_statuses(dataclasses.replace(config, error_fraction=0.0), 50)) == {0}


def test_response_delay_holds_answers_not_throughput(config: SmscConfig) -> None:
    delayed = dataclasses.replace(config, response_delay_ms=300)

    async def one_session(port: int, tag: str) -> tuple[float, list[pdu.Pdu]]:
        client = await RawClient.connect(port)
        assert (await client.bind()).command_status == 0  # binds are not delayed
        start = time.monotonic()
        await client.send(
            b"".join(pdu.encode_submit_sm(100 + i, body(f"[nb:{tag}/{i}] x")) for i in range(200))
        )
        await asyncio.sleep(0.05)
        await client.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 999))  # must not overtake
        resps = await client.read_pdus(201)
        elapsed = time.monotonic() - start
        await client.close()
        return elapsed, resps

    async def scenario() -> list[tuple[float, list[pdu.Pdu]]]:
        async with make_smsc(delayed) as smsc:
            start = time.monotonic()
            results = await asyncio.gather(*(one_session(smsc.port, f"s{i}") for i in range(3)))
            # 600 submits, 300 ms each: 180 s one after another; in parallel well under 6 s,
            # even beside CI's other jobs on two cores
            assert time.monotonic() - start < 6
            return results

    for elapsed, resps in run(scenario()):
        assert 0.29 <= elapsed < 6
        assert [r.sequence_number for r in resps] == [*range(100, 300), 999]
    assert len(read_ledger(config.ledger_path)) == 600


def test_shutdown_answers_delayed_submits_and_closes_sessions(config: SmscConfig) -> None:
    delayed = dataclasses.replace(config, response_delay_ms=5000, unbind_timeout=0.2)

    async def scenario() -> None:
        smsc = make_smsc(delayed)
        await smsc.start()
        client = await RawClient.connect(smsc.port)
        assert (await client.bind()).command_status == 0
        await client.send(pdu.encode_submit_sm(5, b"[nb:s/1] x"))
        await asyncio.sleep(0.1)
        start = time.monotonic()
        await smsc.stop()
        assert time.monotonic() - start < 4  # not the 5 s response delay
        resp = await client.read_pdu()
        assert (resp.sequence_number, resp.command_status) == (5, 0)
        unbind = await client.read_pdu()  # a bound session is unbound (no answer: closed)
        assert (unbind.command_id, unbind.body) == (pdu.UNBIND, b"")
        assert await client.closed_by_peer()
        await client.close()
        assert metric(smsc, "nazbench_smsc_sessions_closed_total", reason="shutdown") == 1
        with pytest.raises(OSError):
            await RawClient.connect(smsc.port)

    run(scenario())
    assert [x["msg_id"] for x in read_ledger(config.ledger_path)] == ["s/1"]


def test_ledger_survives_restart_and_message_ids_do_not_repeat(config: SmscConfig) -> None:
    async def session(tag: str) -> list[str]:
        async with make_smsc(config) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            ids = [pdu.parse_submit_sm_resp((await client.submit(f"[nb:{tag}] x")).body)]
            ids += [pdu.parse_submit_sm_resp((await client.submit(f"[nb:{tag}] y")).body)]
            await client.close()
            return ids

    first = run(session("a/1"))
    before = config.ledger_path.read_bytes()
    second = run(session("b/1"))
    third = run(session("c/1"))
    after = config.ledger_path.read_bytes()
    assert after.startswith(before)  # appended, never truncated
    lines = read_ledger(config.ledger_path)
    assert [x["message_id"] for x in lines] == first + second + third
    assert len(set(first + second + third)) == 6
    boots = [int(i.split("-")[0], 16) for i in (first[0], second[0], third[0])]
    assert boots == sorted(set(boots))
    assert len({x["session"] for x in lines}) == 3


def test_delay_queue_is_bounded_by_pausing_reads(config: SmscConfig, monkeypatch) -> None:
    monkeypatch.setattr(server_module, "MAX_DELAYED_ANSWERS", 20)
    pauses: list[tuple[str, bool]] = []
    original = server_module.Session._set_paused

    def spy(self, why: str, paused: bool) -> None:
        pauses.append((why, paused))
        original(self, why, paused)

    monkeypatch.setattr(server_module.Session, "_set_paused", spy)
    delayed = dataclasses.replace(config, response_delay_ms=50)

    async def scenario() -> list[pdu.Pdu]:
        async with make_smsc(delayed) as smsc:
            client = await RawClient.connect(smsc.port)
            assert (await client.bind()).command_status == 0
            for chunk in range(10):
                await client.send(
                    b"".join(pdu.encode_submit_sm(1000 + chunk * 15 + i, b"x") for i in range(15))
                )
                await asyncio.sleep(0.005)
            resps = await client.read_pdus(150)
            await client.close()
            return resps

    resps = run(scenario())
    assert [r.sequence_number for r in resps] == list(range(1000, 1150))
    assert ("delay", True) in pauses
    assert ("delay", False) in pauses
