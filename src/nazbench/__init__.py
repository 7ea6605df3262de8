"""nazbench: host-side code of the fault-tolerance benchmark for the naz SMPP client."""

__version__ = "0.1.0"
