import random
import struct

import pytest

from nazbench.lab import wan_delay as wd


def _packet(packet_id: int, seq: int = 7) -> bytes:
    """A NFQNL_MSG_PACKET as the kernel sends it (header attribute only)."""
    hdr = wd.attr(wd.NFQA_PACKET_HDR, struct.pack("!IHB", packet_id, 0x0800, 1))
    other = wd.attr(9, b"\x01\x02\x03")  # an attribute the daemon ignores
    body = struct.pack("=BBH", 2, 0, 0) + other + hdr
    kind = (wd.NFNL_SUBSYS_QUEUE << 8) | wd.NFQNL_MSG_PACKET
    return struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body


def test_attributes_are_padded_to_four_bytes():
    assert len(wd.attr(1, b"abcde")) == 12
    assert wd.attr(1, b"abcd")[:4] == struct.pack("=HH", 8, 1)


def test_parse_finds_packet_ids_across_a_multi_message_datagram():
    datagram = _packet(41) + _packet(42) + _packet(1 << 31)
    assert list(wd.parse(datagram)) == [("packet", 41), ("packet", 42), ("packet", 1 << 31)]


def test_parse_reports_netlink_errors_and_ignores_truncation():
    err = struct.pack("=IHHII", 36, wd.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -16) + b"\0" * 16
    assert list(wd.parse(err)) == [("error", 16)]
    assert list(wd.parse(_packet(5)[:-3])) == []  # length says more than arrived
    assert list(wd.parse(b"")) == []


def test_verdict_batch_is_an_accept_up_to_the_id_on_the_right_queue():
    msg = wd.verdict_batch(154, 99)
    length, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", msg)
    assert length == len(msg)
    assert kind == (wd.NFNL_SUBSYS_QUEUE << 8) | wd.NFQNL_MSG_VERDICT_BATCH
    assert flags == wd.NLM_F_REQUEST
    assert struct.unpack_from("!H", msg, 18)[0] == 154  # res_id, network order
    assert struct.unpack_from("!II", msg, 24) == (wd.NF_ACCEPT, 99)


def test_bind_asks_for_acks_metadata_copy_and_fail_open():
    msgs = wd.bind_messages(3, 5000)
    assert [struct.unpack_from("=I", m)[0] for m in msgs] == [len(m) for m in msgs]
    assert all(struct.unpack_from("=H", m, 6)[0] & wd.NLM_F_ACK for m in msgs)
    assert struct.pack("!IB", 0, wd.NFQNL_COPY_META) in msgs[1]
    assert struct.pack("!I", 5000) in msgs[2]


def test_scheduler_releases_in_order_after_the_delay():
    s = wd.Scheduler(0.077)
    s.add(1, now=10.0)
    s.add(2, now=10.010)
    assert s.due(10.076) is None
    assert s.timeout(10.0) == pytest.approx(0.077)
    assert s.due(10.077) == 1
    assert s.due(10.2) == 2
    assert s.timeout(10.3) is None


def test_jitter_never_reorders_and_stays_within_bounds():
    s = wd.Scheduler(0.05, 0.02, random.Random(3))
    for i in range(2000):
        s.add(i, now=i * 0.001)
    times = [t for t, _ in s.pending]
    assert times == sorted(times)
    offsets = [t - i * 0.001 for i, (t, _) in enumerate(s.pending)]
    assert min(offsets) >= 0.03 - 1e-9
    assert max(offsets) <= 0.07 + 0.02  # a held-back packet may wait for its predecessor
    assert max(offsets) - min(offsets) > 0.02  # the jitter is really applied


def test_same_seed_same_delays():
    a, b = wd.Scheduler(0.05, 0.01, random.Random(9)), wd.Scheduler(0.05, 0.01, random.Random(9))
    for i in range(50):
        a.add(i, 0.0)
        b.add(i, 0.0)
    assert list(a.pending) == list(b.pending)


@pytest.mark.parametrize(("delay", "jitter"), [(-1, 0), (0.01, -0.1), (0.01, 0.02)])
def test_bad_delays_rejected(delay, jitter):
    with pytest.raises(ValueError, match=r"delay|jitter"):
        wd.Scheduler(delay, jitter)


@pytest.mark.parametrize(
    "argv",
    [
        ["--queue", "70000", "--delay-ms", "1"],
        ["--queue", "1", "--delay-ms", "1", "--jitter-ms", "5"],
    ],
)
def test_cli_rejects_bad_input(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        wd.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--queue" in err or "jitter" in err
