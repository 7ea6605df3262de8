"""naz-cli side of nazbench: the Redis broker, metrics hook, JSON logger and client factory
that ``naz-cli --client nazbench.nazapp.app.client`` loads, plus the producer that fills the
queue and the reconciliation of what was queued against the mock SMSC's ledger.
"""
