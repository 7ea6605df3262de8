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
