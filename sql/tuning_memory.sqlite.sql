-- Memory of past tuning: one row per finished study run, with the dataset's meta-features and the best feasible
-- parameters, so later studies of similar datasets (same plugin, same privacy policy) can start from them.
-- Created on first use by synth_platform/tuning/memory.py in the memory database.
CREATE TABLE IF NOT EXISTS synth_tuning_memory (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    run_id                TEXT,                      -- Dagster run that ran the study
    plugin                TEXT NOT NULL,             -- synthcity plugin, e.g. ddpm
    privacy_policy        TEXT NOT NULL,             -- memory.policy_signature: "none" for non-DP plugins
    dataset_fingerprint   TEXT NOT NULL,             -- source.dataset_fingerprint: table, column names and dtypes
    meta_features         TEXT NOT NULL,             -- JSON object, memory.FEATURE_SCALES names
    best_params           TEXT NOT NULL,             -- JSON object: the best feasible trial's searched parameters
    best_value            REAL NOT NULL,             -- its utility objective, lower is better
    metrics               TEXT NOT NULL,             -- JSON object: more scores of that trial, e.g. mia_auc
    study_name            TEXT NOT NULL,             -- Optuna study
    storage               TEXT,                      -- Optuna storage URL, password masked
    best_trial_number     INTEGER,
    budget                TEXT,                      -- TuningBudget.signature: values compare only under one budget
    trials_in_study       INTEGER,
    warm_start_trials     INTEGER NOT NULL DEFAULT 0, -- trials enqueued from this memory
    warm_start_best_value REAL,                      -- best complete feasible warm-start trial; NULL: none
    cold_best_value       REAL,                      -- best complete feasible other trial; NULL: none
    warm_start_won        BOOLEAN CHECK (warm_start_won IN (0, 1)) -- warm best < cold best; NULL: one side had no trial
);
CREATE INDEX IF NOT EXISTS synth_tuning_memory_plugin_policy ON synth_tuning_memory (plugin, privacy_policy);
