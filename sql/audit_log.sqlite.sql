-- One row per read of a source table by the platform (source_sample), refused and failed reads included.
-- Created on first use by synth_platform/sampling/audit.py in the audit database (PlatformStorage.audit_url).
CREATE TABLE IF NOT EXISTS synth_source_audit (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor          TEXT NOT NULL,             -- OS user of the process that read
    run_id         TEXT,                      -- Dagster run id, when read by a run
    source         TEXT NOT NULL,             -- database URL, password masked
    table_name     TEXT NOT NULL,
    columns        TEXT NOT NULL,             -- JSON list; [] means all columns
    filters        TEXT NOT NULL,             -- JSON list of {column, op, value}; sensitive values "<redacted>"
    sample_fraction REAL,
    max_rows       INTEGER,
    seed           INTEGER,
    stratify_by    TEXT,
    rows_returned  INTEGER,
    epsilon_spent  REAL,                      -- epsilon of the query-level Laplace noise this read spent; NULL: no noise
    query_hash     TEXT,                      -- sha256 of the compiled SQL (placeholders) + parameters JSON
    query_shape    TEXT,                      -- the compiled SQL with placeholders, no values
    outcome        TEXT NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed')),
    error          TEXT,                      -- why it was refused or failed; never a password
    read_as        TEXT                       -- the database role; why it is privileged, when a request allowed that
);
CREATE INDEX IF NOT EXISTS synth_source_audit_occurred_at ON synth_source_audit (occurred_at);
