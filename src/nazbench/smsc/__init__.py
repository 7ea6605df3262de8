"""The nazbench mock SMSC: a fast asyncio SMPP 3.4 server with a durable ledger.

- :mod:`nazbench.smsc.pdu` - PDU codec (constants, framing, bind/submit_sm)
- :mod:`nazbench.smsc.ledger` - the JSON-lines ledger of answered submit_sm
- :mod:`nazbench.smsc.metrics` - Prometheus metrics (``nazbench_smsc_*``)
- :mod:`nazbench.smsc.server` - :class:`Smsc` and its per-connection :class:`Session`
- :mod:`nazbench.smsc.cli` - ``python -m nazbench.smsc``
"""

from nazbench.smsc.cli import main
from nazbench.smsc.server import Smsc, SmscConfig

__all__ = ["Smsc", "SmscConfig", "main"]
