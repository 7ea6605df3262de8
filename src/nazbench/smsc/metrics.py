"""Prometheus metrics of the mock SMSC (all named ``nazbench_smsc_*``).

The server counts into plain dicts while it works through a read and adds them here once
per read, so the per-PDU cost stays out of the hot path.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, start_http_server

from nazbench.smsc.modes import MODES

PREFIX = "nazbench_smsc_"


class SmscMetrics:
    """The SMSC's metric families, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        reg = self.registry
        self.binds = Counter(
            PREFIX + "binds",
            "bind_* requests answered, by bind mode and result (a command_status name).",
            ["mode", "result"],
            registry=reg,
        )
        self.submit_sm = Counter(
            PREFIX + "submit_sm",
            "submit_sm requests answered, by the command_status of the answer.",
            ["command_status"],
            registry=reg,
        )
        self.pdus = Counter(
            PREFIX + "pdus_received",
            "PDUs received, by command name.",
            ["command"],
            registry=reg,
        )
        self.generic_nacks = Counter(
            PREFIX + "generic_nacks",
            "generic_nack PDUs sent (unknown command_id, bad command_length, enquire_link "
            "with a body), by command_status.",
            ["command_status"],
            registry=reg,
        )
        self.sessions_opened = Counter(
            PREFIX + "sessions_opened", "TCP sessions accepted.", registry=reg
        )
        self.sessions_closed = Counter(
            PREFIX + "sessions_closed",
            "TCP sessions ended, by reason (peer, unbind, malformed, shutdown, error, "
            "init_timeout, inactivity, drop_resp, unbind_mode).",
            ["reason"],
            registry=reg,
        )
        self.sessions_without_pdu = Counter(
            PREFIX + "sessions_without_pdu",
            "TCP sessions that ended without sending a byte (port probes; logged at DEBUG).",
            registry=reg,
        )
        self.unbinds_sent = Counter(
            PREFIX + "unbinds_sent",
            "unbind PDUs the SMSC sent, by reason (inactivity, shutdown, unbind_mode).",
            ["reason"],
            registry=reg,
        )
        self.invalid_pdus = Counter(
            PREFIX + "invalid_pdus",
            "submit_sm / bind_* whose body could not be decoded, answered with their own "
            "response and an error status, by command and command_status.",
            ["command", "command_status"],
            registry=reg,
        )
        self.malformed = Counter(
            PREFIX + "malformed_streams",
            "Sessions closed because their byte stream could not be framed, by kind.",
            ["kind"],
            registry=reg,
        )
        self.active_sessions = Gauge(
            PREFIX + "active_sessions", "TCP sessions currently open.", registry=reg
        )
        self.bound_sessions = Gauge(
            PREFIX + "bound_sessions", "Sessions currently bound.", registry=reg
        )
        self.ledger_lines = Counter(
            PREFIX + "ledger_lines_written", "Lines written to the ledger.", registry=reg
        )
        # behaviour modes (--control-socket)
        self.mode = Gauge(
            PREFIX + "mode",
            "1 for the behaviour mode in force (set through the control socket), 0 for the others.",
            ["mode"],
            registry=reg,
        )
        for name in MODES:
            self.mode.labels(name).set(1 if name == "normal" else 0)
        self.unanswered = Counter(
            PREFIX + "unanswered",
            "PDUs read and not answered in mode silent, by command (such a submit_sm is not "
            "accepted: no ledger line, not in submit_sm_total).",
            ["command"],
            registry=reg,
        )
        self.responses_dropped = Counter(
            PREFIX + "responses_dropped",
            "submit_sm accepted (ledger line, message_id, counted as ESME_ROK in "
            "submit_sm_total) whose submit_sm_resp was not sent: mode drop_resp closed the "
            "session instead.",
            registry=reg,
        )
        # delivery receipts (--receipts)
        self.receipts_sent = Counter(
            PREFIX + "receipts_sent",
            "Delivery receipts (deliver_sm) sent for the first time, by final state.",
            ["stat"],
            registry=reg,
        )
        self.receipts_resent = Counter(
            PREFIX + "receipts_resent",
            "Delivery receipts sent again (no successful deliver_sm_resp in time).",
            registry=reg,
        )
        self.receipts_acked = Counter(
            PREFIX + "receipts_acked",
            "deliver_sm_resp matching a receipt in flight, by command_status.",
            ["command_status"],
            registry=reg,
        )
        self.receipts_abandoned = Counter(
            PREFIX + "receipts_abandoned",
            "Delivery receipts given up after the last try went unacknowledged.",
            registry=reg,
        )
        self.receipts_unknown_resp = Counter(
            PREFIX + "receipts_unknown_resp",
            "deliver_sm_resp whose sequence_number matches no receipt in flight (ignored).",
            registry=reg,
        )
        self.receipts_pending = Gauge(
            PREFIX + "receipts_pending",
            "Delivery receipts drawn and not yet acknowledged (scheduled, waiting for a "
            "bind, or in flight).",
            registry=reg,
        )

    def add_counts(
        self,
        pdus: dict[str, int],
        submits: dict[str, int],
        nacks: dict[str, int] | None = None,
    ) -> None:
        """Add one read's worth of per-command and per-status counts."""
        for command, count in pdus.items():
            self.pdus.labels(command).inc(count)
        for status, count in submits.items():
            self.submit_sm.labels(status).inc(count)
        if nacks:
            for status, count in nacks.items():
                self.generic_nacks.labels(status).inc(count)


def serve_metrics(metrics: SmscMetrics, port: int, host: str = "0.0.0.0") -> object:  # noqa: S104
    """Expose ``metrics`` over HTTP on ``host:port`` (a daemon thread); returns the server."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
