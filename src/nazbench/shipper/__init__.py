"""The log shipper: naz's JSON-lines log file -> the TimescaleDB ``logs`` table.

It replaces the seed's shipper, which keyed rows on an insert timestamp (colliding rows
were lost) and truncated the file after reading it (lines written meanwhile were lost).
Here a row is keyed on where it came from (source host, file identity, byte offset), the
file is only read, and the position in it is committed in the same transaction as the
rows, so a crash at any point resumes without gaps or duplicates.

Modules: ``records`` (lines -> rows, tracebacks attached), ``core`` (following the path
across rotations, batching, back-pressure), ``db`` (COPY + INSERT ... ON CONFLICT DO
NOTHING + positions in one transaction), ``metrics``, ``cli``.
"""
