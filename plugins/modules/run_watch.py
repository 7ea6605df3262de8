#!/usr/bin/python
# Copyright: nazbench contributors
# MIT License
"""Documentation of the run_watch action plugin (plugins/action/run_watch.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_watch
short_description: Watch a nazbench run from its host, one progress line per look
description:
  - Runs O(argv) on the target host every O(interval) seconds and prints the C(line) of
    the JSON object it returns, until that object says C(over) (the run ended) or
    C(failed) (for example the chaos job died), which fails the task with its text.
  - A loop on the controller (an action plugin), not a recursive include, so a run of any
    length can be watched (30 hours at 60 s is 1,800 looks). All times it shows and
    decides on are the host's; the controller only counts its own looks.
  - Up to O(max_failed_looks) looks in a row may fail (host unreachable, command error);
    they are shown and the watch goes on.
  - With O(abort_file), a watch that fails writes its reason there, and every other host's
    watch of the same run stops at its next look naming it.
version_added: "0.2.0"
author:
  - nazbench contributors
options:
  argv:
    description: The command that takes one look and prints one JSON object.
    type: list
    elements: str
    required: true
  interval:
    description: Seconds between looks.
    type: float
    default: 60
  abort_file:
    description: A file on the controller shared by the watches of one run.
    type: path
  max_failed_looks:
    description: Failed looks in a row after which the watch gives up.
    type: int
    default: 5
notes:
  - This is an action plugin; the module file only documents it.
"""

EXAMPLES = r"""
- name: Watch the run until it is over
  run_watch:
    argv: [/opt/nazbench/venv/bin/python, -m, nazbench.runstatus, progress, --run-id, r1,
           --ledger, /var/lib/nazbench/smsc/ledger.jsonl, --expect, "300", --since, "1764483300.5",
           --deadline, "1764484500"]
    interval: 15
    abort_file: "{{ playbook_dir }}/../artifacts/r1/watch-abort"
"""

RETURN = r"""
looks:
  description: Looks taken.
  returned: always
  type: int
  sample: 42
last:
  description: The last look's JSON object.
  returned: always
  type: dict
  sample: {line: "300/300 delivered, queue 0, down: nothing", over: true, failed: null}
watch_end:
  description:
    - How the watch ended. C(over) and C(failed) are what the host said (the run is over,
      or it cannot go on); C(lost) (looks kept failing) and C(aborted) (another host's
      watch of the run failed) mean the run may still be going on; attach again.
  returned: always
  type: str
  sample: over
watch_failed:
  description: Whether the watch ended on a failure (kept when the task sets C(failed_when)).
  returned: always
  type: bool
  sample: false
msg:
  description: Why the watch ended.
  returned: always
  type: str
  sample: the chaos loop ended (stop_when)
"""
