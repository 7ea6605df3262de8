# Copyright: nazbench contributors
# MIT License
"""Action plugin: watch a benchmark run from its host, one progress line per look.

The loop runs on the controller; each look is one command on the target host (its argv
prints one JSON object: ``line``, ``over``, ``failed``). No recursion and no growing
state, so a 30-hour run at one look a minute is 1,800 iterations of the same loop. The
logic is :func:`watch`, which the unit tests drive with a fake look and clock.
"""

from __future__ import annotations

import json
import os
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class LookFailed(Exception):
    """One look could not be taken (the command failed, the host was unreachable)."""


def watch(look, sleep, emit, *, interval, abort=None, max_failed_looks=5, monotonic=time.monotonic):
    """Look every ``interval`` seconds until a look says ``over`` or ``failed``.

    The result's ``end`` says how it ended: ``over`` and ``failed`` are the host's word
    (the run is over, or cannot go on); ``lost`` (looks kept failing) and ``aborted``
    (another host's watch failed) are the controller's: the run may still be going on.

    ``look()`` returns the host's JSON object or raises :class:`LookFailed`; up to
    ``max_failed_looks`` failures in a row are shown and tolerated (a link can drop for a
    minute in a five-hour run). ``abort()`` returns a reason to stop (another host's watch
    found its chaos job failed) or None. Returns the result of the task.
    """
    looks = failed_in_row = 0
    last: dict = {}
    started = monotonic()
    while True:
        reason = abort() if abort else None
        if reason:
            return {
                "failed": True,
                "end": "aborted",
                "msg": f"watch stopped: {reason}",
                "looks": looks,
                "last": last,
            }
        try:
            last = look()
            failed_in_row = 0
        except LookFailed as exc:
            failed_in_row += 1
            emit(f"look failed ({failed_in_row}/{max_failed_looks} in a row): {exc}")
            if failed_in_row >= max_failed_looks:
                return {
                    "failed": True,
                    "end": "lost",
                    "msg": f"watch gave up after {failed_in_row} failed looks in a row: {exc}",
                    "looks": looks,
                    "last": last,
                }
            sleep(interval)
            continue
        looks += 1
        elapsed = int(monotonic() - started)
        emit(
            f"{last.get('line', '?')}  [look {looks}, watching {elapsed // 60}m{elapsed % 60:02d}s]"
        )
        if last.get("failed"):
            return {
                "failed": True,
                "end": "failed",
                "msg": str(last["failed"]),
                "looks": looks,
                "last": last,
            }
        if last.get("over"):
            return {
                "failed": False,
                "end": "over",
                "msg": str(last.get("why", "over")),
                "looks": looks,
                "last": last,
            }
        sleep(interval)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("argv", "interval", "abort_file", "max_failed_looks"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self._task.args
        argv = args.get("argv")
        if not isinstance(argv, list) or not argv:
            raise AnsibleActionFail("argv: a non-empty list (the command that prints one look)")
        try:
            interval = float(args.get("interval", 60))
            max_failed = int(args.get("max_failed_looks", 5))
        except (TypeError, ValueError) as exc:
            raise AnsibleActionFail(
                f"interval and max_failed_looks must be numbers: {exc}"
            ) from exc
        if interval < 0 or max_failed < 1:
            raise AnsibleActionFail("interval must be >= 0 and max_failed_looks >= 1")
        abort_file = args.get("abort_file")
        host = task_vars.get("inventory_hostname", "?")

        def look():
            res = self._execute_module(
                module_name="ansible.builtin.command",
                module_args={"argv": [str(a) for a in argv]},
                task_vars=task_vars,
            )
            if res.get("unreachable") or res.get("rc", 1) != 0:
                why = res.get("stderr") or res.get("msg") or f"rc={res.get('rc')}"
                raise LookFailed(str(why).strip()[-300:])
            try:
                out = json.loads(res.get("stdout") or "")
            except ValueError as exc:
                raise LookFailed(f"not JSON: {res.get('stdout', '')[:200]!r}") from exc
            if not isinstance(out, dict):
                raise LookFailed(f"not a JSON object: {out!r}"[:200])
            return out

        def abort():
            if abort_file and os.path.exists(abort_file):
                with open(abort_file, encoding="utf-8") as fh:
                    return fh.read().strip() or "another host's watch failed"
            return None

        outcome = watch(
            look,
            time.sleep,
            lambda line: display.display(f"[{host}] {line}"),
            interval=interval,
            abort=abort,
            max_failed_looks=max_failed,
        )
        if outcome["failed"] and abort_file and not os.path.exists(abort_file):
            os.makedirs(os.path.dirname(abort_file) or ".", exist_ok=True)
            with open(abort_file, "w", encoding="utf-8") as fh:
                fh.write(f"{host}: {outcome['msg']}\n")
        result.update(
            changed=False,
            looks=outcome["looks"],
            last=outcome["last"],
            msg=outcome["msg"],
            watch_failed=outcome["failed"],
            watch_end=outcome["end"],
        )
        if outcome["failed"]:
            result["failed"] = True
        return result
