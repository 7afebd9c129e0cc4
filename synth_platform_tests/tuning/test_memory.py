import math
import warnings

import numpy as np
import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState, create_trial
from scipy.stats import skew
from synthcity.plugins.core.distribution import (
    CategoricalDistribution,
    FloatDistribution,
    IntegerDistribution,
    IntLogDistribution,
    LogDistribution,
)

from synth_platform.generation.generators import PrivacyPolicy
from synth_platform.profiling.profile import profile_dataframe
from synth_platform.tuning.memory import (
    FEATURE_SCALES,
    MEMORY_TABLE,
    TuningMemory,
    TuningMemoryEntry,
    clip_to_space,
    ddl_path,
    feature_distance,
    meta_features,
    policy_signature,
    warm_start_outcome,
    warm_start_params,
)
from synth_platform.tuning.search_space import search_space, suggest

EXPECTED_COLUMNS = {
    "id", "created_at", "run_id", "plugin", "privacy_policy", "dataset_fingerprint", "meta_features", "best_params",
    "best_value", "metrics", "study_name", "storage", "best_trial_number", "budget", "trials_in_study",
    "warm_start_trials", "warm_start_best_value", "cold_best_value", "warm_start_won",
}


def _features(frame):
    return meta_features(frame, profile_dataframe(frame))


def _entry(fingerprint, features, plugin="ddpm", policy="none", **more):
    fields = dict(
        plugin=plugin, privacy_policy=policy, dataset_fingerprint=fingerprint, meta_features=features,
        best_params={"lr": 1e-3, "batch_size": 512}, best_value=0.2, study_name=f"{fingerprint}-{plugin}",
        best_trial_number=4,
    )
    fields.update(more)
    return TuningMemoryEntry(**fields)


# --- DDL ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ddl_files_define_the_same_columns(dialect):
    text = ddl_path(dialect).read_text()
    assert f"CREATE TABLE IF NOT EXISTS {MEMORY_TABLE}" in text
    for column in EXPECTED_COLUMNS:
        assert f"\n    {column} " in text, column


def test_an_unsupported_database_is_refused_with_what_to_use():
    with pytest.raises(ValueError, match="Use SQLite or PostgreSQL"):
        ddl_path("mysql")


# --- meta-features and distance ------------------------------------------------------------------------------------


def test_meta_features_of_penguins_match_its_profile(penguins):
    profile = profile_dataframe(penguins)
    features = meta_features(penguins, profile)
    assert set(features) == set(FEATURE_SCALES)
    assert features["log10_rows"] == pytest.approx(math.log10(len(penguins)))
    assert features["log10_columns"] == pytest.approx(math.log10(8))
    # species, island, sex are categorical; the four measurements and year (2007-2009) numeric
    assert (features["numeric_share"], features["categorical_share"], features["datetime_share"]) == (5 / 8, 3 / 8, 0.0)
    assert features["max_log10_cardinality"] == pytest.approx(math.log10(3))
    assert features["mean_log10_cardinality"] == pytest.approx((math.log10(3) + math.log10(3) + math.log10(2)) / 3)
    assert features["mean_missing_share"] == pytest.approx(penguins.isna().mean().mean())
    assert features["missing_columns_share"] == penguins.isna().any().mean()
    numeric = [c for c in penguins.columns if profile.column(c).kind == "numeric"]
    by_hand = np.mean([math.log1p(abs(skew(penguins[c].dropna(), bias=False))) for c in numeric])
    assert features["mean_log1p_abs_skewness"] == pytest.approx(by_hand)


def test_meta_features_of_adult_and_credit_follow_their_type_mix(adult, credit):
    for frame in (adult, credit):
        profile = profile_dataframe(frame)
        features = meta_features(frame, profile)
        modelled = [c for c in profile.columns if c.kind != "identifier"]
        assert features["log10_rows"] == pytest.approx(math.log10(len(frame)))
        assert features["numeric_share"] == len(profile.by_kind("numeric")) / len(modelled)
        assert features["numeric_share"] + features["categorical_share"] + features["datetime_share"] == pytest.approx(1)
        assert all(math.isfinite(value) for value in features.values())
    # adult's widest categorical (native_country) has 41 values, credit's (Home) 6
    assert _features(adult)["max_log10_cardinality"] == pytest.approx(math.log10(41))
    assert _features(credit)["max_log10_cardinality"] == pytest.approx(math.log10(6))


def test_identifier_and_datetime_columns_are_described_as_such(penguins):
    frame = penguins.head(100).assign(
        record_id=[f"r{i}" for i in range(100)], seen=[f"2024-01-{1 + i % 28:02d}" for i in range(100)]
    )
    features = _features(frame)
    assert features["log10_columns"] == pytest.approx(math.log10(9))  # the identifier is not modelled
    assert features["datetime_share"] == pytest.approx(1 / 9)


def test_feature_distance_is_a_scaled_root_mean_square():
    a = {name: 0.0 for name in FEATURE_SCALES}
    assert feature_distance(a, dict(a)) == 0.0
    one_unit = dict(a, log10_rows=FEATURE_SCALES["log10_rows"])  # one feature off by one scale unit
    assert feature_distance(a, one_unit) == pytest.approx(math.sqrt(1 / len(FEATURE_SCALES)))
    # features only one side knows are left out; no shared feature: infinitely far
    assert feature_distance({"log10_rows": 3.0, "new_feature": 9.0}, {"log10_rows": 4.0}) == pytest.approx(1.0)
    assert feature_distance({"log10_rows": 3.0}, {"other": 1.0}) == math.inf


def test_policy_signature_ignores_the_policy_of_non_dp_plugins():
    assert policy_signature("ddpm", PrivacyPolicy(epsilon=3.0)) == "none"
    assert policy_signature("dpgan", PrivacyPolicy(epsilon=3.0)) == "epsilon=3,delta=1/(10n)"
    assert policy_signature("dpgan", PrivacyPolicy(epsilon=0.5, delta=1e-6)) == "epsilon=0.5,delta=1e-06"


# --- storage --------------------------------------------------------------------------------------------------------


def _check_round_trip(url):
    memory = TuningMemory(url)
    features = {"log10_rows": 3.5, "numeric_share": 0.25}
    full = _entry(
        "credit-abc", features, metrics={"mia_auc": np.float64(0.52)}, storage="postgresql+psycopg2://bob:s3cret@db/optuna",
        budget="steps=1000,rows=5000,val=0.25", run_id="0f3c-run", trials_in_study=12, warm_start_trials=2,
        warm_start_best_value=0.18, cold_best_value=0.2, warm_start_won=True,
        best_params={"lr": np.float64(1e-3), "batch_size": np.int64(512), "nonlin": "relu"},
    )
    first = memory.record(full)
    second = memory.record(_entry("penguins-def", features, warm_start_won=False))
    third = memory.record(_entry("adult-ghi", features))
    assert first < second < third
    engine = sa.create_engine(url)
    assert {column["name"] for column in sa.inspect(engine).get_columns(MEMORY_TABLE)} == EXPECTED_COLUMNS
    engine.dispose()
    stored, lost, unknown = memory.entries()
    assert stored.id == first and stored.created_at is not None
    assert stored.best_params == {"lr": 1e-3, "batch_size": 512, "nonlin": "relu"}
    assert stored.metrics == {"mia_auc": 0.52} and stored.meta_features == features
    assert stored.storage == "postgresql+psycopg2://bob:***@db/optuna"
    assert (stored.run_id, stored.budget, stored.trials_in_study, stored.best_trial_number) == (
        "0f3c-run", "steps=1000,rows=5000,val=0.25", 12, 4)
    assert (stored.warm_start_trials, stored.warm_start_best_value, stored.cold_best_value) == (2, 0.18, 0.2)
    assert stored.warm_start_won is True and lost.warm_start_won is False and unknown.warm_start_won is None
    assert unknown.warm_start_trials == 0 and unknown.metrics == {} and unknown.storage is None


def test_entries_round_trip_in_sqlite(tmp_path):
    _check_round_trip(f"sqlite:///{tmp_path / 'memory.sqlite3'}")


def test_entries_round_trip_in_postgresql(pg_database):
    _check_round_trip(pg_database)


def test_a_study_without_a_finite_best_value_is_refused(tmp_path):
    memory = TuningMemory(f"sqlite:///{tmp_path / 'memory.sqlite3'}")
    with pytest.raises(ValueError, match="record only a study with a feasible best trial"):
        memory.record(_entry("x", {"log10_rows": 1.0}, best_value=float("nan")))


@pytest.fixture(scope="module")
def dataset_features(adult, penguins, credit):
    return {"adult": _features(adult), "penguins": _features(penguins), "credit": _features(credit)}


def _filled_memory(url, dataset_features):
    memory = TuningMemory(url)
    for name, features in dataset_features.items():
        memory.record(_entry(f"{name}-fp", features))
    return memory


def test_nearest_finds_the_dataset_a_subsample_came_from(tmp_path, dataset_features, credit, adult):
    memory = _filled_memory(f"sqlite:///{tmp_path / 'memory.sqlite3'}", dataset_features)
    credit_like = _features(credit.sample(frac=0.3, random_state=1).reset_index(drop=True))
    found = memory.nearest("ddpm", "none", credit_like, k=3)
    assert [entry.dataset_fingerprint for _, entry in found][0] == "credit-fp"
    assert [distance for distance, _ in found] == sorted(distance for distance, _ in found)
    adult_like = _features(adult.sample(frac=0.1, random_state=1).reset_index(drop=True))
    assert memory.nearest("ddpm", "none", adult_like, k=1)[0][1].dataset_fingerprint == "adult-fp"
    without_credit = memory.nearest("ddpm", "none", credit_like, exclude_fingerprint="credit-fp")
    assert {entry.dataset_fingerprint for _, entry in without_credit} == {"penguins-fp", "adult-fp"}
    assert len(memory.nearest("ddpm", "none", credit_like, k=2)) == 2


def test_nearest_never_returns_another_plugin_or_policy(pg_database, dataset_features):
    memory = TuningMemory(pg_database)
    credit = dataset_features["credit"]
    memory.record(_entry("credit-fp", credit, plugin="ctgan"))
    memory.record(_entry("credit-fp", credit, plugin="dpgan", policy="epsilon=1,delta=1/(10n)"))
    memory.record(_entry("penguins-fp", dataset_features["penguins"], plugin="dpgan", policy="epsilon=8,delta=1/(10n)"))
    assert memory.nearest("ddpm", "none", credit) == []
    assert [e.plugin for _, e in memory.nearest("ctgan", "none", credit)] == ["ctgan"]
    assert [e.dataset_fingerprint for _, e in memory.nearest("dpgan", "epsilon=8,delta=1/(10n)", credit)] == ["penguins-fp"]


def test_nearest_keeps_the_latest_entry_of_each_dataset(tmp_path, dataset_features):
    memory = TuningMemory(f"sqlite:///{tmp_path / 'memory.sqlite3'}")
    memory.record(_entry("credit-fp", dataset_features["credit"], best_value=0.3, best_trial_number=1))
    latest = memory.record(_entry("credit-fp", dataset_features["credit"], best_value=0.2, best_trial_number=7))
    (only,) = memory.nearest("ddpm", "none", dataset_features["credit"])
    assert only[0] == 0.0 and only[1].id == latest and only[1].best_trial_number == 7


# --- clipping into the space ----------------------------------------------------------------------------------------


def test_clip_to_space_edge_cases():
    space = [
        IntegerDistribution(name="units", low=50, high=150, step=50),
        IntegerDistribution(name="layers", low=1, high=4),
        IntLogDistribution(name="width", low=16, high=1024),
        FloatDistribution(name="dropout", low=0.0, high=0.2),
        LogDistribution(name="lr", low=1e-5, high=3e-3),
        CategoricalDistribution(name="batch_size", choices=[256, 512, 1024]),
        CategoricalDistribution(name="nonlin", choices=["elu", "relu"]),
        CategoricalDistribution(name="weight_decay", choices=[1e-4, 1e-3]),
    ]
    clipped = clip_to_space(
        {
            "units": 170, "layers": 2.6, "width": 5000.4, "dropout": -0.5, "lr": 0.5, "batch_size": 4096,
            "nonlin": "gelu", "weight_decay": 4e-4, "num_timesteps": 1000, "epsilon": 1.0,
        },
        space,
    )
    # 4e-4 is nearer 1e-3 on a log scale (ln 2.5 = 0.92 < ln 4 = 1.39), though nearer 1e-4 on a linear one
    assert clipped == {
        "units": 150, "layers": 3, "width": 1024, "dropout": 0.0, "lr": 3e-3, "batch_size": 1024, "weight_decay": 1e-3,
    }
    assert "nonlin" not in clipped and "num_timesteps" not in clipped and "epsilon" not in clipped
    assert clip_to_space({"units": 74, "lr": 1e-9, "batch_size": 300}, space) == {"units": 50, "lr": 1e-5, "batch_size": 256}
    assert clip_to_space({"units": 76}, space) == {"units": 100}  # off the 50-grid: nearest grid point
    # numpy values become plain Python; values of the wrong kind are dropped
    clipped = clip_to_space({"units": np.int64(100), "batch_size": np.int64(512), "dropout": "high", "layers": float("nan")}, space)
    assert clipped == {"units": 100, "batch_size": 512}
    assert type(clipped["units"]) is int and type(clipped["batch_size"]) is int
    assert clip_to_space({"batch_size": 512.0}, space)["batch_size"] == 512
    assert type(clip_to_space({"batch_size": 512.0}, space)["batch_size"]) is int


def test_the_step_grid_starts_at_low_not_at_zero():
    (clipped,) = clip_to_space({"n": 13}, [IntegerDistribution(name="n", low=2, high=20, step=3)]).values()
    assert clipped == 14  # 2, 5, 8, 11, 14: 13 is nearest 14
    assert clip_to_space({"n": 30}, [IntegerDistribution(name="n", low=2, high=20, step=3)]) == {"n": 20}


def _enqueue_and_suggest(space, params):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(params, user_attrs={"origin": "warm start from test"})
    trial = study.ask()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        suggested = suggest(trial, space)
    assert not [w for w in caught if "out of range" in str(w.message)]
    return suggested, trial


@pytest.mark.parametrize(
    "plugin, stored",
    [
        ("ctgan", {
            "generator_n_layers_hidden": 9, "generator_n_units_hidden": 120, "generator_nonlin": "selu",
            "generator_dropout": 0.35, "discriminator_n_units_hidden": 10, "discriminator_n_iter": 0,
            "lr": 3e-4, "weight_decay": 1e-3, "batch_size": 1024, "encoder_max_clusters": 10.7, "n_iter": 300,
        }),
        ("ddpm", {"lr": 0.02, "batch_size": 300, "num_timesteps": 100}),
    ],
)
def test_clipped_parameters_are_suggested_exactly_by_a_real_study(plugin, stored):
    space = search_space(plugin)
    clipped = clip_to_space(stored, space)
    assert set(clipped) <= {d.name for d in space} and "n_iter" not in clipped and "num_timesteps" not in clipped
    suggested, trial = _enqueue_and_suggest(space, clipped)
    assert {name: suggested[name] for name in clipped} == clipped
    for name, value in clipped.items():
        distribution = trial.distributions[name]
        assert distribution._contains(distribution.to_internal_repr(value)), name


def test_ctgan_clipping_by_hand():
    clipped = clip_to_space({"generator_n_units_hidden": 120, "lr": 3e-4, "batch_size": 1024}, search_space("ctgan"))
    assert clipped == {"generator_n_units_hidden": 100, "lr": 2e-4, "batch_size": 500}


# --- warm start -----------------------------------------------------------------------------------------------------


def test_warm_start_enqueues_the_clipped_parameters_of_the_most_similar_past_study(tmp_path, dataset_features, credit):
    memory = TuningMemory(f"sqlite:///{tmp_path / 'memory.sqlite3'}")
    memory.record(_entry("penguins-fp", dataset_features["penguins"], best_params={"lr": 1e-4, "batch_size": 256}))
    memory.record(_entry("adult-fp", dataset_features["adult"], best_params={"lr": 2e-4, "batch_size": 512}))
    memory.record(_entry("credit-fp", dataset_features["credit"], best_params={"lr": 0.05, "batch_size": 2000, "num_timesteps": 50},
                         best_trial_number=9, study_name="credit-fp-ddpm"))
    memory.record(_entry("credit-fp", dataset_features["credit"], plugin="tvae", best_params={"lr": 1e-3}))
    space = search_space("ddpm")
    credit_like = _features(credit.sample(frac=0.3, random_state=2).reset_index(drop=True))
    starts = warm_start_params(memory, "ddpm", "none", credit_like, space, k=1)
    assert [(s.params, s.origin, s.source_fingerprint) for s in starts] == [
        ({"lr": 3e-3, "batch_size": 1024}, "warm start from credit-fp-ddpm trial 9", "credit-fp")]

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.sqlite3'}", sampler=optuna.samplers.TPESampler(seed=0))
    for start in warm_start_params(memory, "ddpm", "none", credit_like, space, k=3):
        study.enqueue_trial(start.params, user_attrs=start.user_attrs)
    def objective(trial):  # scored and within the privacy constraints, as run_study's trials are
        trial.set_user_attr("constraints", [-0.1, -0.01])
        return suggest(trial, space)["lr"] * 100

    study.optimize(objective, n_trials=4)
    first, second, third, cold = study.trials
    assert first.params == {"lr": 3e-3, "batch_size": 1024} and first.user_attrs["origin"].startswith("warm start from credit")
    assert {second.user_attrs["warm_start_dataset"], third.user_attrs["warm_start_dataset"]} == {"penguins-fp", "adult-fp"}
    assert "origin" not in cold.user_attrs
    outcome = warm_start_outcome(study.trials)
    assert outcome["warm_start_trials"] == 3
    assert outcome["warm_start_best_value"] == pytest.approx(100 * min(t.params["lr"] for t in (first, second, third)))
    assert outcome["cold_best_value"] == pytest.approx(cold.value)
    assert outcome["warm_start_won"] == (outcome["warm_start_best_value"] < cold.value)


def test_warm_starts_with_the_same_clipped_parameters_are_enqueued_once(tmp_path, dataset_features):
    memory = TuningMemory(f"sqlite:///{tmp_path / 'memory.sqlite3'}")
    memory.record(_entry("credit-fp", dataset_features["credit"], best_params={"lr": 0.05, "batch_size": 4096}))
    memory.record(_entry("adult-fp", dataset_features["adult"], best_params={"lr": 0.01, "batch_size": 1024}))
    memory.record(_entry("penguins-fp", dataset_features["penguins"], best_params={"units": 3}))  # nothing survives
    starts = warm_start_params(memory, "ddpm", "none", dataset_features["credit"], search_space("ddpm"), k=3)
    assert [(s.params, s.source_fingerprint) for s in starts] == [({"lr": 3e-3, "batch_size": 1024}, "credit-fp")]


def _trial(value, origin=None, state=TrialState.COMPLETE, constraints=None, user_constraints=None):
    user_attrs = {} if origin is None else {"origin": origin}
    if constraints is None and user_constraints is None:
        user_constraints = [-0.1]  # scored and feasible; a trial with no constraints at all was never scored
    if user_constraints is not None:
        user_attrs["constraints"] = user_constraints
    return create_trial(state=state, value=value if state == TrialState.COMPLETE else None, user_attrs=user_attrs,
                        constraints=constraints)


def test_warm_start_outcome_compares_the_best_feasible_complete_trials():
    warm = "warm start from credit-ddpm trial 3"
    won = warm_start_outcome([_trial(0.3, "plugin defaults"), _trial(0.2, warm), _trial(0.25), _trial(0.1, warm, TrialState.FAIL)])
    assert won == {"warm_start_trials": 2, "warm_start_best_value": 0.2, "cold_best_value": 0.25, "warm_start_won": True}
    lost = warm_start_outcome([_trial(0.3, warm), _trial(0.25, "plugin defaults")])
    assert lost["warm_start_won"] is False
    tie = warm_start_outcome([_trial(0.25, warm), _trial(0.25)])
    assert tie["warm_start_won"] is False  # "beat" means strictly better


def test_infeasible_trials_do_not_count_and_an_empty_side_gives_no_verdict():
    warm = "warm start from credit-ddpm trial 3"
    infeasible_by_optuna = _trial(0.01, warm, constraints={"mia_auc": 0.05})
    infeasible_by_attr = _trial(0.02, warm, user_constraints=[-0.1, 0.2])
    feasible_warm = _trial(0.4, warm, constraints={"mia_auc": -0.01}, user_constraints={"dcr": 0.0})
    outcome = warm_start_outcome([infeasible_by_optuna, infeasible_by_attr, feasible_warm, _trial(0.3)])
    assert outcome == {"warm_start_trials": 3, "warm_start_best_value": 0.4, "cold_best_value": 0.3, "warm_start_won": False}
    only_infeasible = warm_start_outcome([infeasible_by_optuna, _trial(0.3)])
    assert only_infeasible["warm_start_best_value"] is None and only_infeasible["warm_start_won"] is None
    no_warm = warm_start_outcome([_trial(0.3), _trial(0.2, "plugin defaults")])
    assert no_warm == {"warm_start_trials": 0, "warm_start_best_value": None, "cold_best_value": 0.2, "warm_start_won": None}
    assert warm_start_outcome([_trial(0.3, warm)])["warm_start_won"] is None
