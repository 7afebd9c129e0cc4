-- Memory of the auto-optimizer: one row per adjusted attempt, what rule was applied to answer which failure and
-- what it did to the metric it targeted, so later chains rank the policy's rules by what worked on similar data.
-- Only metric numbers, names and meta-features: never a value of the source.
-- Created on first use by synth_platform/optimizer/learning.py in the memory database.
CREATE TABLE IF NOT EXISTS synth_optimizer_memory (
    id                  BIGSERIAL PRIMARY KEY,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    chain               TEXT NOT NULL,             -- the optimizer chain (its first run)
    attempt             BIGINT NOT NULL,           -- 1 for the first adjusted re-run
    run_id              TEXT NOT NULL,             -- Dagster run of this attempt
    parent_run_id       TEXT NOT NULL,             -- Dagster run whose failed report the rule answered
    dataset_fingerprint TEXT NOT NULL,             -- source.dataset_fingerprint: table, column names and dtypes
    meta_features       TEXT NOT NULL,             -- JSON object, tuning/memory.FEATURE_SCALES names
    diagnosis_kind      TEXT NOT NULL,             -- the parent's diagnosis: one failure kind or "several (a+b)"
    failure             TEXT NOT NULL,             -- the failure kind the rule answered
    rule                TEXT NOT NULL,             -- policy.POLICY rule name
    change              TEXT NOT NULL,             -- the change in words
    target_metric       TEXT NOT NULL,             -- learning.TARGET_METRIC[failure]
    metrics_before      TEXT NOT NULL,             -- JSON object: the parent report's four judged metrics (null: n/a)
    metrics_after       TEXT NOT NULL,             -- JSON object: the same for this attempt
    target_before       DOUBLE PRECISION NOT NULL, -- the target metric in the parent report (lower is better)
    target_after        DOUBLE PRECISION NOT NULL, -- the target metric in this attempt's report
    target_threshold    DOUBLE PRECISION NOT NULL, -- its threshold
    success             DOUBLE PRECISION NOT NULL, -- 1 fixed, 0.5 improved but not fixed, 0 otherwise
    green_after         BOOLEAN NOT NULL, -- every check of this attempt passed
    plugin              TEXT,                      -- the generator this attempt fitted
    steps_after         BIGINT                     -- training steps its final fit trained
);
CREATE INDEX IF NOT EXISTS synth_optimizer_memory_failure_rule ON synth_optimizer_memory (failure, rule);
CREATE INDEX IF NOT EXISTS synth_optimizer_memory_chain ON synth_optimizer_memory (chain);
