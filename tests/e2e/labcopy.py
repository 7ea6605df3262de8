"""The shipped lab inventory, copied for a lab pair of a test's own (names and subnet):
nazbench.cells' own copy, so the tests' pairs are made as a campaign's cells are."""

from __future__ import annotations

from nazbench.cells import lab_inventory

__all__ = ["lab_inventory"]
