"""Join what the producer queued (the manifest) with what the mock SMSC accepted (its ledger).

``python -m nazbench.nazapp.reconcile --manifest M --ledger L [--ledger L2 ...] [--json]``

A ledger is JSON lines (optionally gzipped, ``.gz``); each line has at least ``msg_id``
(a string, or null when the SMSC could not read an id from the short_message) and
``command_status`` (0 = the SMSC accepted the submit_sm; an integer, or a string such as
``"0x00000045"``). Other fields are ignored. Lines are streamed; memory is a counter per
expected message plus whatever is anomalous.

Categories of expected ids (they partition the manifest):

- ``delivered_once``: accepted exactly once.
- ``duplicated``: accepted more than once (id -> times accepted).
- ``lost``: queued but never accepted. ``rejected_only`` is the part of ``lost`` that
  reached the SMSC but was only ever rejected (id -> the statuses seen).

And what was not expected: ``unexpected`` (accepted ids that are not in the manifest,
id -> times), ``null_msg_id_lines`` (lines without an id; ``null_msg_id_accepted`` of them
accepted) and ``malformed_lines`` (not JSON, or without the two fields). Lines are read
and classified by :func:`nazbench.ledger.classify`, the one ledger reader; with ``--since``
the lines before the run's window (``before_since_lines``) and other runs' lines
(``other_run_lines``) are counted apart.

Delivery receipts (the SMSC's ``receipt`` records of the run's messages) are tallied per
receipt, keyed by the SMSC's message_id: ``receipts`` gives how many were sent (and resent),
acknowledged once (one deliver_sm_resp with status 0), acknowledged more than once, never
acknowledged, and answered with an error status; and the time from a receipt's first
deliver_sm to its first accepted deliver_sm_resp (``ack_latency_s``). They never change
the submit_sm categories above.

Exit status: 0 after reporting (add ``--fail-on-discrepancy`` to get 1 when anything but
``delivered_once`` is non-empty), 2 when the manifest or a ledger cannot be read.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nazbench import ledger
from nazbench.nazapp.producer import read_manifest
from nazbench.stats import quantiles

_MAX_MALFORMED_EXAMPLES = 20


@dataclasses.dataclass(slots=True)
class Receipt:
    """One delivery receipt of the run, over all its tries."""

    msg_id: str
    first_sent: float | None = None
    tries: int = 0
    stat: str | None = None
    ok_acks: int = 0
    error_acks: int = 0
    first_ok_ack: float | None = None

    @property
    def ack_latency(self) -> float | None:
        if self.first_sent is None or self.first_ok_ack is None:
            return None
        return self.first_ok_ack - self.first_sent


def receipt_summary(receipts: Iterable[Receipt]) -> dict[str, Any]:
    """Counts and ack latency of ``receipts`` (see the module's docstring)."""
    counts = collections.Counter()
    by_stat: collections.Counter[str] = collections.Counter()
    latencies = []
    for r in receipts:
        if not r.tries:  # an ack whose receipt was sent before the run's window
            counts["acks_without_receipt"] += 1
            continue
        counts["sent"] += 1
        counts["resent"] += r.tries - 1
        by_stat[r.stat or "?"] += 1
        if r.ok_acks == 1:
            counts["acked_once"] += 1
        elif r.ok_acks > 1:
            counts["acked_more_than_once"] += 1
        else:
            counts["never_acked"] += 1
        counts["error_acks"] += r.error_acks
        if (latency := r.ack_latency) is not None:
            latencies.append(latency)
    keys = ("sent", "resent", "acked_once", "acked_more_than_once", "never_acked")
    out: dict[str, Any] = {k: counts[k] for k in keys}
    out["error_acks"] = counts["error_acks"]
    out["acks_without_receipt"] = counts["acks_without_receipt"]
    out["by_stat"] = dict(sorted(by_stat.items()))
    out["ack_latency_s"] = quantiles(latencies)
    return out


@dataclasses.dataclass
class Result:
    run_id: str
    expected: int
    ledger_lines: int = 0
    accepted_lines: int = 0
    rejected_lines: int = 0
    delivered_once: int = 0
    lost: list[str] = dataclasses.field(default_factory=list)
    rejected_only: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    duplicated: dict[str, int] = dataclasses.field(default_factory=dict)
    unexpected: dict[str, int] = dataclasses.field(default_factory=dict)
    null_msg_id_lines: int = 0
    null_msg_id_accepted: int = 0
    malformed_lines: int = 0
    receipt_lines: int = 0  # the SMSC's delivery-receipt records (not submit_sm results)
    malformed_examples: list[str] = dataclasses.field(default_factory=list)
    # The run's delivery receipts by the SMSC's message_id.
    receipts: dict[str, Receipt] = dataclasses.field(default_factory=dict)
    # The SMSC's ledger outlives runs: lines of other runs and lines older than ``since``
    # are counted here and otherwise left out.
    other_run_lines: int = 0
    before_since_lines: int = 0

    @property
    def ok(self) -> bool:
        """True when every queued message was accepted exactly once and nothing else was."""
        return not (
            self.lost
            or self.duplicated
            or self.unexpected
            or self.null_msg_id_lines
            or self.malformed_lines
        )

    def counts(self) -> dict[str, int]:
        return {
            "expected": self.expected,
            "delivered_once": self.delivered_once,
            "lost": len(self.lost),
            "rejected_only": len(self.rejected_only),
            "duplicated": len(self.duplicated),
            "duplicate_extra_accepts": sum(n - 1 for n in self.duplicated.values()),
            "unexpected": len(self.unexpected),
            "null_msg_id_lines": self.null_msg_id_lines,
            "null_msg_id_accepted": self.null_msg_id_accepted,
            "malformed_lines": self.malformed_lines,
            "ledger_lines": self.ledger_lines,
            "accepted_lines": self.accepted_lines,
            "rejected_lines": self.rejected_lines,
            "other_run_lines": self.other_run_lines,
            "before_since_lines": self.before_since_lines,
            "receipt_lines": self.receipt_lines,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "counts": self.counts(),
            "lost": self.lost,
            "rejected_only": self.rejected_only,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "malformed_examples": self.malformed_examples,
            "receipts": receipt_summary(self.receipts.values()),
        }


class _Reconciler:
    def __init__(self, manifest: dict[str, Any], since: float | None = None) -> None:
        self.since = since
        self.run_id = manifest["run_id"]
        self.count = int(manifest["count"])
        self.first = int(manifest.get("id_scheme", {}).get("first_index", 0))
        self.prefix = f"{self.run_id}/"
        self.accepted = array("I", bytes(4 * self.count))
        self.rejected: dict[int, list[int]] = {}
        self.result = Result(run_id=self.run_id, expected=self.count)

    def entries(self, lines: Iterable[str | bytes | dict]) -> Iterator[ledger.Entry]:
        """The classified lines; ``ours`` entries carry their index (msgid.index_of)."""
        return ledger.classify(
            lines, self.run_id, since=self.since, first=self.first, count=self.count
        )

    def record(self, entry: ledger.Entry) -> None:
        result = self.result
        result.ledger_lines += 1
        category = entry.category
        if category == ledger.MALFORMED:
            _malformed(result, entry.lineno, entry.why or "malformed")
            return
        if category == ledger.BEFORE:
            result.before_since_lines += 1
            return
        if category == ledger.OTHER_RUN:
            result.other_run_lines += 1
            return
        if category == ledger.RECEIPT:  # delivery receipts are not submit_sm results
            result.receipt_lines += 1
            self.receipt(entry)
            return
        ok = entry.accepted
        if ok:
            result.accepted_lines += 1
        else:
            result.rejected_lines += 1
        if category == ledger.NULL_ID:
            result.null_msg_id_lines += 1
            result.null_msg_id_accepted += ok
            return
        index = entry.index
        if index is not None:
            if ok:
                self.accepted[index] += 1
            else:
                self.rejected.setdefault(index, []).append(entry.status)
        elif ok:
            result.unexpected[entry.msg_id] = result.unexpected.get(entry.msg_id, 0) + 1

    def receipt(self, entry: ledger.Entry) -> None:
        """Tally a receipt record of this run (one whose msg_id is the run's)."""
        fields = ledger.receipt_record(entry)
        if fields is None or fields.message_id is None:
            return
        if entry.msg_id is None or not entry.msg_id.startswith(self.prefix):
            return
        receipt = self.result.receipts.get(fields.message_id)
        if receipt is None:
            receipt = self.result.receipts[fields.message_id] = Receipt(entry.msg_id)
        if fields.kind == "receipt":
            receipt.tries += 1
            receipt.stat = fields.stat or receipt.stat
            if receipt.first_sent is None and entry.ts is not None:
                receipt.first_sent = entry.ts
        elif fields.kind == "receipt_ack":
            if entry.status == 0:
                receipt.ok_acks += 1
                if receipt.first_ok_ack is None and entry.ts is not None:
                    receipt.first_ok_ack = entry.ts
            else:
                receipt.error_acks += 1

    def finish(self) -> Result:
        result, prefix, first = self.result, self.prefix, self.first
        for index, n in enumerate(self.accepted):
            if n == 1:
                result.delivered_once += 1
            elif n == 0:
                msg_id = f"{prefix}{index + first}"
                result.lost.append(msg_id)
                if index in self.rejected:
                    result.rejected_only[msg_id] = self.rejected[index]
            else:
                result.duplicated[f"{prefix}{index + first}"] = n
        return result


def reconcile(
    manifest: dict[str, Any],
    ledger_lines: Iterable[str | bytes | dict],
    since: float | None = None,
) -> Result:
    """Classify every id of ``manifest`` (a producer manifest dict) against the ledger lines.

    ``ledger_lines`` may be raw JSON lines (str/bytes, blank lines skipped) or already
    decoded dicts. Lines carrying another run's id, and with ``since`` (epoch seconds)
    the lines before the window it opens (see :mod:`nazbench.ledger`), are counted apart
    and otherwise ignored: one SMSC ledger holds every run.
    """
    reconciler = _Reconciler(manifest, since)
    for entry in reconciler.entries(ledger_lines):
        reconciler.record(entry)
    return reconciler.finish()


def _malformed(result: Result, lineno: int, why: str) -> None:
    result.malformed_lines += 1
    if len(result.malformed_examples) < _MAX_MALFORMED_EXAMPLES:
        result.malformed_examples.append(f"line {lineno}: {why}")


def read_ledgers(paths: Iterable[Path]) -> Iterator[str]:
    """The lines of all ledgers, in order (a restarted SMSC may leave several files)."""
    return ledger.read_lines(paths)


def _sample(items: Iterable[Any], limit: int) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
    return shown + more


def format_text(result: Result, limit: int = 20) -> str:
    c = result.counts()
    lines = [
        f"run {result.run_id}: {'OK' if result.ok else 'DISCREPANCIES'}",
        f"  expected           {c['expected']}",
        f"  delivered once     {c['delivered_once']}",
        f"  lost               {c['lost']}  (of which rejected only: {c['rejected_only']})",
        f"  duplicated         {c['duplicated']}  (extra accepts: {c['duplicate_extra_accepts']})",
        f"  unexpected ids     {c['unexpected']}",
        f"  null msg_id lines  {c['null_msg_id_lines']}  (accepted: {c['null_msg_id_accepted']})",
        f"  malformed lines    {c['malformed_lines']}",
        f"  other runs' lines  {c['other_run_lines']}  (before --since: {c['before_since_lines']})",
        f"  ledger lines       {c['ledger_lines']}  (accepted {c['accepted_lines']}, "
        f"rejected {c['rejected_lines']})",
    ]
    r = receipt_summary(result.receipts.values())
    if r["sent"] or r["acks_without_receipt"]:
        lat = r["ack_latency_s"]
        lines += [
            f"  receipts sent      {r['sent']}  (resent {r['resent']}): acked once "
            f"{r['acked_once']}, more than once {r['acked_more_than_once']}, never "
            f"{r['never_acked']}; error acks {r['error_acks']}",
            f"  receipt → ack      p50 {lat['p50']} s, p99 {lat['p99']} s, max {lat['max']} s",
        ]
    if result.lost:
        lines.append(f"  lost ids: {_sample(result.lost, limit)}")
    if result.rejected_only:
        rej = (f"{k} {v}" for k, v in result.rejected_only.items())
        lines.append(f"  rejected-only ids: {_sample(rej, limit)}")
    if result.duplicated:
        dup = (f"{k} x{v}" for k, v in result.duplicated.items())
        lines.append(f"  duplicated ids: {_sample(dup, limit)}")
    if result.unexpected:
        unx = (f"{k} x{v}" for k, v in result.unexpected.items())
        lines.append(f"  unexpected ids: {_sample(unx, limit)}")
    if result.malformed_examples:
        lines.append(f"  malformed: {_sample(result.malformed_examples, limit)}")
    return "\n".join(lines)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nazbench.nazapp.reconcile",
        description="Reconcile a producer manifest with mock SMSC ledger(s).",
    )
    p.add_argument("--manifest", required=True, type=Path, help="producer manifest JSON")
    p.add_argument(
        "--ledger", required=True, type=Path, action="append", help="SMSC ledger (repeatable)"
    )
    p.add_argument(
        "--since", type=float, default=None, help="ignore ledger lines older than this epoch"
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--max-ids", type=int, default=20, help="ids listed per category (text)")
    p.add_argument(
        "--fail-on-discrepancy",
        action="store_true",
        help="exit 1 unless every message was delivered exactly once",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        manifest = read_manifest(args.manifest)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"reconcile: error: cannot read manifest {str(args.manifest)!r}: {exc}\n")
        return 2
    try:
        result = reconcile(manifest, read_ledgers(args.ledger), since=args.since)
    except ledger.READ_ERRORS as exc:
        sys.stderr.write(f"reconcile: error: cannot read ledger: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(format_text(result, args.max_ids) + "\n")
    return 1 if args.fail_on_discrepancy and not result.ok else 0


if __name__ == "__main__":
    sys.exit(main())
