"""What playbooks/collect.yml runs, as ordinary Python (stdlib only).

On the naz host (``/opt/nazbench/venv/bin/python -m nazbench.collect ...``; the host-side
package is installed there from the wheelhouse)::

    cutoff [--margin-s 5]                          this host's clock, whole epoch seconds
    count-records --run-id R --log-path P --cutoff EPOCH
    host-versions [--package NAME ...] [--program KEY=COMMAND ...]

On the observability host, as the postgres user::

    db-counts --run-id R --cutoff EPOCH --expect N [--database D --port P --host H]
              [--wait-s 60 --every-s 3]

On the controller (``ansible_playbook_python``)::

    pick --artifacts DIR [--run-id R] [--compare A,B] [--from-hosts true|false]
    logs-check --run-id R --cutoff EPOCH --files-json JSON --db-counts JSON --out F
    versions --naz-host JSON --observability-host JSON --ansible-core V --out F

Every command prints one JSON value on stdout. Exit status 0: done; 2: bad arguments or
a user error (an unknown run, no run at all), with the reason on stderr.

Time. Nothing here reads the local time zone: epoch seconds come from the host that made
them (``run.json`` from run_chaos.yml, the cut-off from the naz host's clock), and log
timestamps are parsed as aware datetimes (a naive one is UTC).
"""
