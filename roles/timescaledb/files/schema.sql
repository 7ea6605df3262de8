-- nazbench log schema (role timescaledb). Applied by the role as the database owner;
-- every statement is idempotent so the role can run it on each converge.
--
-- The seed's columns come first and keep their names and meaning, so the seed's queries
-- (SELECT * FROM logs WHERE length(logs.error) > 0 ORDER BY timestamp DESC; ...) run
-- verbatim. The seed keyed rows on an insert timestamp and lost rows that collided; here
-- a row is identified by where it came from: (source_host, source_file, source_offset),
-- the byte offset of the line's first byte in one log file (source_file is the shipper's
-- identity for that file, stable across renames by logrotate). TimescaleDB requires the
-- time column in every unique index of a hypertable, so it is part of the key; with the
-- offset already unique this changes nothing.
CREATE TABLE IF NOT EXISTS logs (
    "timestamp"   timestamptz NOT NULL,
    event         text,
    stage         text,
    client_id     text,
    log_id        text,
    error         text,
    metadata      jsonb,
    run_id        text,
    level         text,
    source_host   text        NOT NULL,
    source_file   text        NOT NULL,
    source_offset bigint      NOT NULL,
    shipped_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT logs_source_key UNIQUE (source_host, source_file, source_offset, "timestamp")
);

-- The seed's lookups: newest first, by event.
CREATE INDEX IF NOT EXISTS logs_timestamp_event_idx ON logs ("timestamp" DESC, event);
-- collect.yml and the must-show counts select one run.
CREATE INDEX IF NOT EXISTS logs_run_id_timestamp_idx ON logs (run_id, "timestamp" DESC);

-- Where each shipper is in each file. Updated in the same transaction as the rows it
-- covers, so a crash either keeps both or neither: a restart resumes exactly there.
CREATE TABLE IF NOT EXISTS shipper_positions (
    source_host  text        NOT NULL,
    source_file  text        NOT NULL,
    path         text        NOT NULL,
    "offset"     bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_host, source_file)
);
