"""What differs between the naz releases nazbench runs (0.6.x, 0.7.x, 0.8.x), in one place.

The rest of ``nazbench.nazapp`` is written against naz 0.8.1; this module maps it onto the
naz that is installed, deciding once, at import, from what naz offers (not from its
version string):

- queue interface: 0.6.x ``naz.q.BaseOutboundQueue`` of ``dict`` items (``pdu`` bytes);
  0.7.x and 0.8.x ``naz.broker.BaseBroker`` of ``naz.protocol.Message``.
- Client kwarg for the queue: 0.6.x ``outboundqueue``; later ``broker``.
- Client kwarg for the logger: 0.6.x ``log_handler`` (a ``naz.logger.BaseLogger``:
  ``bind(level, log_metadata)`` + ``log(level, dict)``) plus ``loglevel``; later
  ``logger`` (a ``logging.Logger``).
- hook methods: 0.6.x ``request(cmd, log_id, hook_metadata)`` and ``response(...,
  smsc_response)``, without the PDU; later ``to_smsc(cmd, log_id, hook_metadata, pdu)``
  and ``from_smsc(cmd, log_id, hook_metadata, status, pdu)``.
- short_message encoding: 0.6.x Client ``encoding=``; 0.7.x Client
  ``codec=SimpleCodec(enc)``; 0.8.x per message (``encoding``).
- SubmitSM JSON: none in 0.6.x; 0.7.x has no ``encoding``, ``errors`` or optional tags;
  0.8.x all of them.

naz 0.6.x's ``Client.connect`` calls ``settimeout(socket_timeout)`` on the asyncio
transport's socket, which raises ``ValueError: settimeout(): only 0 timeout is allowed on
transport sockets`` on Python >= 3.9 (asyncio.trsock); :class:`LegacyClient` connects the
same way without that call (it never bounded anything: the socket is non-blocking). Its
naz-cli cannot run on Python >= 3.10 at all (``asyncio.gather(..., loop=loop)``), see
``nazbench.nazapp.cli`` which replaces it for every naz version.

The queue's wire format is naz 0.8.1's ``SubmitSM.to_json()`` (what the producer writes)
for every version; :func:`decode` turns it into what the installed naz dequeues, refusing
(so the broker parks it as undecodable) a message that naz could not send as written.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import random
import string
import struct
from typing import Any

import naz

VERSION: str = naz.__version__.about["__version__"]
"""As naz reports it, e.g. ``"v0.8.1"``."""

LEGACY: bool = not hasattr(naz, "broker")
"""naz 0.6.x: outboundqueue of dicts, BaseLogger with bind(), request/response hooks."""

_CLIENT_PARAMS = frozenset(inspect.signature(naz.Client.__init__).parameters)
CLIENT_CODEC: bool = "codec" in _CLIENT_PARAMS
"""naz 0.7.x: one ``naz.codec.BaseCodec`` per client, messages carry no encoding."""

DEFAULT_ENCODING = "gsm0338"

if LEGACY:
    BaseBroker: Any = naz.q.BaseOutboundQueue
    BaseHook: Any = naz.hooks.BaseHook
else:
    BaseBroker = naz.broker.BaseBroker
    BaseHook = naz.hooks.BaseHook

SUBMIT_SM: str = naz.SmppCommand.SUBMIT_SM
SUBMIT_SM_RESP: str = naz.SmppCommand.SUBMIT_SM_RESP
_PDU_KEY = "pdu_b64"  # 0.6.x response items carry raw PDU bytes; JSON carries them in base64


def version_tuple(version: str = VERSION) -> tuple[int, ...]:
    """``"v0.7.9"`` -> ``(0, 7, 9)``."""
    return tuple(int(p) for p in version.lstrip("v").split(".") if p.isdigit())


# ---------------------------------------------------------------------- messages


def encode(message: Any) -> str:
    """The JSON the broker stores for a message naz hands to ``enqueue``."""
    if LEGACY:
        item = dict(message)
        pdu = item.pop("pdu", None)
        if pdu is not None:
            item[_PDU_KEY] = base64.b64encode(pdu).decode("ascii")
        return json.dumps(item)
    return message.to_json()


def is_submit_sm(message: Any) -> bool:
    if LEGACY:
        return message.get("smpp_command") == SUBMIT_SM
    return isinstance(message, naz.protocol.SubmitSM)


def log_id(message: Any) -> str | None:
    return message.get("log_id") if LEGACY else message.log_id


# SubmitSM keys naz 0.8.1 writes that older naz does not take, with the value that means
# "nothing to do" (anything else cannot be sent as asked, so the message is refused).
_NEUTRAL = {"errors": "strict", "alert_on_message_delivery": False}


def _submit_sm_keys() -> frozenset[str] | None:
    if LEGACY:
        # what 0.6.x's dequeue_messages reads (client.py, dequeue_messages)
        return frozenset(
            {
                "version",
                "smpp_command",
                "short_message",
                "log_id",
                "source_addr",
                "destination_addr",
                "hook_metadata",
            }
        )
    params = inspect.signature(naz.protocol.SubmitSM.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params) - {"self"}


_SUBMIT_SM_KEYS = _submit_sm_keys()
# naz 0.6.x sets service_type, ton/npi, esm_class, registered_delivery, ... per client;
# make_client leaves them at these defaults (the same values as 0.8.1's SubmitSM defaults).
_CLIENT_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(naz.Client.__init__).parameters.items()
    if p.default is not p.empty
}


def decode(text: str, encoding: str = DEFAULT_ENCODING) -> Any:  # noqa: PLR0912
    """A stored JSON message as the installed naz dequeues it; raises ValueError if unusable.

    ``encoding`` is the client's (0.6.x ``encoding``, 0.7.x codec): a submit_sm asking for
    another one is refused rather than sent with the wrong data_coding.
    """
    if not (LEGACY or CLIENT_CODEC):
        return naz.protocol.json_to_Message(text)
    item = json.loads(text)
    if not isinstance(item, dict) or "smpp_command" not in item:
        raise ValueError("not a naz message (no smpp_command)")
    if item["smpp_command"] == SUBMIT_SM and _SUBMIT_SM_KEYS is not None:
        for key in set(item) - _SUBMIT_SM_KEYS:
            value = item.pop(key)
            if key == "encoding":
                if value != encoding:
                    raise ValueError(
                        f"message encoding {value!r} differs from the client's {encoding!r}"
                        f" (naz {VERSION} encodes per client)"
                    )
            elif LEGACY and key in _CLIENT_DEFAULTS:
                if value != _CLIENT_DEFAULTS[key]:
                    raise ValueError(
                        f"{key}={value!r} differs from the client's {_CLIENT_DEFAULTS[key]!r}"
                        f" (naz {VERSION} sets it per client)"
                    )
            elif key in _NEUTRAL:
                if value != _NEUTRAL[key]:
                    raise ValueError(f"naz {VERSION} cannot send {key}={value!r}")
            elif value not in (None, "", False):
                raise ValueError(f"naz {VERSION} does not support the field {key!r}")
    if LEGACY:
        if _PDU_KEY in item:
            item["pdu"] = base64.b64decode(item.pop(_PDU_KEY))
        for key in ("version", "log_id"):
            if key not in item:
                raise ValueError(f"missing field {key!r}")
        return item
    return naz.protocol.json_to_Message(json.dumps(item))


# ---------------------------------------------------------------------- client


if LEGACY:

    class LegacyClient(naz.Client):
        """naz 0.6.x's Client with a ``connect`` that works on Python >= 3.9.

        Identical to naz 0.6.1's ``Client.connect`` (client.py:775-795) except for the
        ``sock.settimeout(self.socket_timeout)`` call, which raises on transport sockets
        since Python 3.9.
        """

        async def connect(self, log_id: str = "") -> tuple[Any, Any]:
            if log_id == "":
                log_id = "".join(random.choices(string.ascii_lowercase + string.digits, k=17))
            self._log(
                logging.INFO, {"event": "naz.Client.connect", "stage": "start", "log_id": log_id}
            )
            reader, writer = await asyncio.open_connection(self.smsc_host, self.smsc_port)
            self.reader = reader
            self.writer = writer
            self._log(
                logging.INFO, {"event": "naz.Client.connect", "stage": "end", "log_id": log_id}
            )
            self.current_session_state = naz.SmppSessionState.OPEN
            return reader, writer

        async def send_data(
            self, smpp_command: str, msg: bytes, log_id: str, hook_metadata: str = ""
        ) -> None:
            if smpp_command == naz.SmppCommand.BIND_TRANSCEIVER:
                msg = fix_bind_pdu(msg)
            await super().send_data(smpp_command, msg, log_id, hook_metadata)

    ClientClass: Any = LegacyClient
else:
    ClientClass = naz.Client


def fix_bind_pdu(pdu: bytes) -> bytes:
    """naz 0.6.x's bind_transceiver with interface_version, addr_ton and addr_npi as the
    1-octet integers SMPP 3.4 (section 4.1.5) specifies.

    naz 0.6.1 packs them with ``struct.pack(">I", ...)`` (client.py:823-825), 4 octets
    each, so a strict SMSC answers ESME_RINVPARLEN; naz 0.7.0 fixed it (``">B"``). A PDU
    that is already well formed is returned unchanged.
    """
    body = pdu[16:]
    pos = 0
    for _ in range(3):  # system_id, password, system_type
        pos = body.index(b"\x00", pos) + 1
    rest = body[pos:]
    if len(rest) < 13 or rest[-1:] != b"\x00" or b"\x00" in rest[12:-1]:
        return pdu
    if (
        rest[0:3] != b"\x00\x00\x00"
        or rest[4:7] != b"\x00\x00\x00"
        or rest[8:11] != b"\x00\x00\x00"
    ):
        return pdu
    body = body[:pos] + bytes((rest[3], rest[7], rest[11])) + rest[12:]
    header = struct.pack(">I", 16 + len(body)) + pdu[4:16]
    return header + body


def register_logger(logger_class: type) -> None:
    """Make ``logger_class`` acceptable to naz 0.6.x's ``isinstance(log_handler, BaseLogger)``."""
    if LEGACY:
        naz.logger.BaseLogger.register(logger_class)


def make_client(
    *,
    broker: Any,
    logger: Any,
    hook: Any,
    log_level: str = "DEBUG",
    encoding: str = DEFAULT_ENCODING,
    **kwargs: Any,
) -> Any:
    """``naz.Client(**kwargs)`` with the broker, logger and hook under the installed naz's names.

    ``kwargs`` are naz 0.8.1's (smsc_host, smsc_port, system_id, password, system_type,
    address_range, client_id, enquire_link_interval, socket_timeout, drain_duration, ...);
    floats are passed as floats (0.6.x rejects ints).
    """
    for key in ("enquire_link_interval", "socket_timeout", "drain_duration"):
        if key in kwargs:
            kwargs[key] = float(kwargs[key])
    if LEGACY:
        register_logger(type(logger))
        return ClientClass(
            outboundqueue=broker,
            log_handler=logger,
            loglevel=log_level.upper(),
            hook=hook,
            encoding=encoding,
            **kwargs,
        )
    if CLIENT_CODEC:
        kwargs["codec"] = naz.codec.SimpleCodec(encoding=encoding)
    # 0.8.x: the encoding travels with each message
    return ClientClass(broker=broker, logger=logger, hook=hook, **kwargs)
