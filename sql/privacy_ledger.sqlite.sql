-- The privacy ledger: one row per spend of differential-privacy budget on a source table — a query-level noised
-- read, the DP trials of a tuning study, a DP final fit — so the epsilons spent on a table add up across runs
-- (basic composition) and a run that would pass the table's budget is refused before it spends.
-- Append-only: a row is never updated or deleted. Never a credential or a source value: the source is the
-- table's address without user, password or query (privacy_ledger.source_id), the detail names the mechanism.
-- Created on first use by synth_platform/privacy_ledger.py in the memory database (the tuning memory's).
CREATE TABLE IF NOT EXISTS synth_privacy_ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    source      TEXT NOT NULL,             -- dialect://host:port/database#schema.table
    run_id      TEXT NOT NULL,             -- the Dagster run that spent
    step        TEXT NOT NULL,             -- the asset that spent: source_sample, tuned_hyperparameters, synthetic_table
    kind        TEXT NOT NULL CHECK (kind IN ('noised_read', 'dp_tuning', 'dp_training')),
    epsilon     REAL NOT NULL CHECK (epsilon >= 0),
    detail      TEXT NOT NULL DEFAULT ''   -- the mechanism in words (columns noised, trials, delta): no source value
);
CREATE INDEX IF NOT EXISTS synth_privacy_ledger_source ON synth_privacy_ledger (source);
