import pytest

from nazbench import msgid


def test_round_trip_through_bytes():
    body = msgid.encode_body(msgid.make_id("run-1.a_b", 41), "hello world")
    assert msgid.decode_body(body.encode()) == "run-1.a_b/41"
    assert msgid.decode_body(body) == "run-1.a_b/41"


@pytest.mark.parametrize(
    "body",
    [b"hello", b"[nb:] x", b"[nb:run/1]x", b" [nb:run/1] x", b"[nb:run/x] y", b"[nb:r un/1] y"],
)
def test_bodies_without_a_well_formed_id_decode_to_none(body):
    assert msgid.decode_body(body) is None


@pytest.mark.parametrize("run_id", ["", "a b", "x/y", "a" * 65, "ünï", None])
def test_bad_run_ids_are_rejected_with_the_name(run_id):
    with pytest.raises(ValueError, match="run_id"):
        msgid.validate_run_id(run_id)


def test_negative_index_rejected():
    with pytest.raises(ValueError, match="index"):
        msgid.make_id("r", -1)


@pytest.mark.parametrize(
    ("msg_id", "first", "count", "expected"),
    [
        ("r/0", 0, None, 0),
        ("r/41", 0, 42, 41),
        ("r/10", 10, 2, 0),
        ("r/11", 10, 2, 1),
        ("r/" + "9" * 18, 0, None, 10**18 - 1),
    ],
)
def test_index_of_reads_canonical_ids_of_the_run(msg_id, first, count, expected):
    assert msgid.index_of(msg_id, "r", first, count) == expected


@pytest.mark.parametrize(
    "msg_id",
    [
        "other/1",  # another run
        "rr/1",  # a run whose id starts with ours
        "r1",  # no slash
        "r/",  # no index
        "r//1",
        "r/07",  # leading zero
        "r/00",
        "r/+1",
        "r/-1",
        "r/ 1",
        "r/1 ",
        "r/1.0",
        "r/1e3",
        "r/1_0",
        "r/\u0661",  # ARABIC-INDIC DIGIT ONE: isdigit() but not ASCII
        "r/\uff11",  # FULLWIDTH DIGIT ONE
        "r/\u00b2",  # SUPERSCRIPT TWO
        "r/1/2",
        "r/" + "1" * 19,  # longer than any index; int() of 5000 digits would raise
        "r/" + "1" * 5000,
        "R/1",
        None,
        1,
        b"r/1",
        ["r/1"],
    ],
)
def test_index_of_rejects_everything_else(msg_id):
    assert msgid.index_of(msg_id, "r") is None


@pytest.mark.parametrize(
    ("msg_id", "first", "count"),
    [("r/8", 0, 8), ("r/9", 0, 8), ("r/9", 10, 5), ("r/15", 10, 5), ("r/0", 1, None)],
)
def test_index_of_rejects_ids_out_of_range(msg_id, first, count):
    assert msgid.index_of(msg_id, "r", first, count) is None


def test_index_of_inverts_make_id():
    for index in (0, 1, 9, 10, 12345):
        assert msgid.index_of(msgid.make_id("run-1.a", index), "run-1.a") == index
