"""Code the lab runs inside its containers (WAN emulation, round-trip probes)."""
