"""The auto-optimizer's adjustment policy, as data: from a diagnosis to the one config change most likely to fix it.

Pure logic: no Dagster here. A config is the pair of plain dicts the re-run gets, every field filled in: the
`tuned_hyperparameters` config (`tuning`) and the `synthetic_table` config (`generation`). `POLICY` is an ordered
table of rules; each names the failure it answers, when it applies, what it changes and why. For a failed run,
`plan_next_attempt` takes the failures in `FAILURE_PRIORITY` order (privacy first) and proposes the first rule that
applies and yields a config no earlier attempt of the chain has tried; it stops at the attempt cap, or when no
untried change is left. `policy_markdown()` renders the table (docs/optimizer.md, run metadata).

Each rule sets the attempt's whole budget itself, never inheriting the one before: a change to the final fit only
adds no tuning trials (the study's best under the same budget is reused), a re-tune adds `RETUNE_TRIALS`, a new
study (another plugin, another trial budget) runs `NEW_STUDY_TRIALS`. Every change text ends with the exact list of
fields it changed, old -> new, so floors and caps can be read off it.

What the chain has learnt reaches the plan as arguments: rules not to repeat (their attempt made their target metric
worse or changed nothing), rules whose opposite goes first (`learning.OPPOSITE_RULES`), and a learnt order of the
rules within each failure kind (`learning.rank_rules`; the order of `POLICY` is its prior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Sequence

from synth_platform.generation.generators import DEFAULT_TRAINING_STEPS, DP_PLUGINS, PLUGIN_DEFAULTS
from synth_platform.optimizer.learning import LearntSteps
from synth_platform.optimizer.diagnosis import (
    CORRELATION,
    DOWNSTREAM,
    DUPLICATES,
    FAILURE_PRIORITY,
    FIDELITY,
    PRIVACY,
    UTILITY,
    Diagnosis,
)

DEFAULT_MAX_ATTEMPTS = 3
MAX_TRAINING_STEPS = 40_000
MIN_TRAINING_STEPS = 500
MAX_BATCH_SIZE = 4096
MAX_MODEL_WIDTH = 1024
# Tuning trials an attempt adds, set by the kind of change (never inherited from the attempt before).
REUSE_TRIALS = 0  # a change to the final fit only: the study's best under the unchanged budget, no new trials
RETUNE_TRIALS = 4  # a re-opened study, or more search under the same constraints
NEW_STUDY_TRIALS = 2  # a study under a new key (another plugin or trial budget): as many as a first run's default
MIA_LIMIT_FLOOR = 0.51  # a trials' MIA limit is never lowered below this: 0.5 is chance, no generator stays under it
COPY_LIMIT_FLOOR = 0.001  # nor the trials' exact-copy limit below this
SEVERE_PRIVACY_EXCESS = 0.15  # MIA AUC this far over its threshold is memorisation no small change fixes
PRIVACY_SAFETY_MARGIN = 0.02  # a passing MIA AUC closer than this to its threshold is not risked by training longer
DP_FALLBACK_PLUGIN = "dpgan"
# The synthcity parameter that sets each plugin's width (embedding or hidden units) and its synthcity default.
MODEL_WIDTH_PARAMETER: dict[str, tuple[str, int]] = {
    "ddpm": ("dim_embed", 128),
    "tvae": ("n_units_embedding", 500),
    "ctgan": ("generator_n_units_hidden", 500),
    "dpgan": ("generator_n_units_hidden", 500),
}
PRIVACY_FAILURES = frozenset({PRIVACY, DUPLICATES})


def starting_parameters(plugin: str, n_rows: int) -> dict[str, int]:
    """Training steps and batch size a fresh generator starts with, decided by the training table's size.

    Large tables (≥ 10,000 rows) take the plugin defaults. Mid-size ones (≥ 1,000) batches of 256 and half the
    default steps. Small ones batches of about an eighth of the rows (a power of two, at least 16) and the minimum
    steps: on a few hundred rows every extra epoch is memorisation, not learning."""
    default_batch = int(PLUGIN_DEFAULTS.get(plugin, {}).get("batch_size", 500))
    default_steps = DEFAULT_TRAINING_STEPS.get(plugin, 2000)
    if n_rows >= 10_000:
        return {"training_steps": default_steps, "batch_size": default_batch}
    if n_rows >= 1_000:
        return {"training_steps": max(MIN_TRAINING_STEPS, default_steps // 2), "batch_size": min(256, default_batch)}
    batch = max(16, 2 ** int(math.floor(math.log2(max(1, n_rows // 8)))))
    return {"training_steps": MIN_TRAINING_STEPS, "batch_size": min(batch, default_batch)}


@dataclass(frozen=True)
class Situation:
    """What the policy knows about a failed run."""

    diagnosis: Diagnosis
    tuning: dict[str, Any]  # the run's tuned_hyperparameters config, every field filled in
    generation: dict[str, Any]  # the run's synthetic_table config, every field filled in
    training_rows: int  # rows the final generator was fitted on
    generator_params: dict[str, Any] = field(default_factory=dict)  # the parameters the run's generator used
    study_name: str = ""  # the study the run's parameters were chosen from
    trained_steps: int = 0  # steps the run's final fit trained (a time budget decides them when none are set)
    learnt_steps: LearntSteps | None = None  # what the outcome memory says similar datasets needed (raises "train longer")

    @property
    def plugin(self) -> str:
        return self.tuning["plugin"]

    @property
    def steps(self) -> int:
        return int(self.generation["training_steps"] or self.trained_steps or DEFAULT_TRAINING_STEPS.get(self.plugin, 2000))

    @property
    def batch_size(self) -> int:
        return int(self.generation["batch_size"] or self.generator_params.get("batch_size")
                   or PLUGIN_DEFAULTS.get(self.plugin, {}).get("batch_size", 500))

    @property
    def model_width(self) -> int:
        name, default = MODEL_WIDTH_PARAMETER[self.plugin]
        return int(self.generation["model_width"] or self.generator_params.get(name) or default)

    @property
    def is_dp(self) -> bool:
        return self.plugin in DP_PLUGINS

    def failing(self, *failures: str) -> bool:
        return any(f in self.diagnosis.failures for f in failures)

    def privacy_margin(self) -> float:
        return self.diagnosis.margins.get("membership_inference_auc", math.inf)


Change = tuple[str, dict[str, Any], dict[str, Any]]  # (sentence, new tuning, new generation)


@dataclass(frozen=True)
class PolicyRule:
    name: str
    failure: str
    when: str
    change: str
    why: str
    propose: Callable[[Situation], Change | None] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Proposal:
    rule: str
    failure: str
    change: str
    tuning: dict[str, Any]
    generation: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    diagnosis: Diagnosis
    proposal: Proposal | None
    stop_reason: str = ""  # why there is no proposal
    considered: tuple[str, ...] = ()  # rules looked at before the proposal, each with why it was passed over


# --- the changes -----------------------------------------------------------------------------------------------


def _with(s: Situation, tuning: dict | None = None, generation: dict | None = None) -> tuple[dict, dict]:
    """The situation's config with the changes applied. The tuning budget is the rule's, not the failed run's: no
    new trials and no re-opened study unless `tuning` says so."""
    base = {**s.tuning, "n_trials": REUSE_TRIALS, "reopen_study": ""}
    return {**base, **(tuning or {})}, {**s.generation, **(generation or {})}


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else repr(value) if value == "" else str(value)


def changed_fields(s: Situation, tuning: dict[str, Any], generation: dict[str, Any]) -> str:
    """Every field a change sets to a new value, `name old -> new`, tuning first (what the change text ends with)."""
    parts = [f"{key} {_shown(s.tuning.get(key))} -> {_shown(value)}" for key, value in tuning.items() if s.tuning.get(key) != value]
    parts += [f"{key} {_shown(s.generation.get(key))} -> {_shown(value)}" for key, value in generation.items() if s.generation.get(key) != value]
    return "; ".join(parts)


def _switch_plugin(s: Situation, plugin: str, reason: str) -> Change | None:
    if s.plugin == plugin:
        return None
    start = starting_parameters(plugin, s.training_rows)
    tuning, generation = _with(s, {"plugin": plugin, "n_trials": NEW_STUDY_TRIALS},
                               {"training_steps": start["training_steps"], "batch_size": start["batch_size"], "model_width": 0})
    text = (f"{reason}: switch {s.plugin} to {plugin}"
            + (f" (epsilon {s.tuning['epsilon']:g}, the policy's)" if plugin in DP_PLUGINS else "")
            + f", starting at {start['training_steps']} steps, batch {start['batch_size']} for {s.training_rows:,} rows, "
            f"{NEW_STUDY_TRIALS} trials in the plugin's study")
    return text, tuning, generation


def _scale_steps(s: Situation, factor: float, reason: str, at_least: LearntSteps | None = None) -> Change | None:
    raw = int(round(s.steps * factor))
    learnt = ""
    if factor >= 1 and at_least is not None and at_least.steps > raw:  # the memory says similar data needed more
        raw = at_least.steps
        learnt = f", raised to {at_least.describe()}"
    # Fewer: not below the minimum (nor up to it); more: not above the maximum.
    new = min(s.steps, max(MIN_TRAINING_STEPS, raw)) if factor < 1 else min(MAX_TRAINING_STEPS, raw)
    if new == s.steps:
        return None
    bound = ""
    if new != raw:
        bound = f", floored at {MIN_TRAINING_STEPS:,}" if factor < 1 else f", capped at {MAX_TRAINING_STEPS:,}"
    tuning, generation = _with(s, generation={"training_steps": new})
    return (f"{reason}: training steps ×{factor:g} = {int(round(s.steps * factor)):,}{learnt}{bound}; the study's best "
            "parameters reused, no new trials", tuning, generation)


def _steps_factor(s: Situation, failure: str) -> float:
    """The further a value is from its threshold, the longer to train: ×2, ×4 or ×8 (by `Finding.ratio`: value /
    threshold for an "at most" metric, threshold / value for an "at least" one)."""
    finding = s.diagnosis.finding(failure)
    ratio = finding.ratio if finding and finding.threshold > 0 else 2.0
    ratio = ratio if math.isfinite(ratio) else 8.0
    return float(min(8, max(2, 2 ** math.ceil(math.log2(max(ratio, 1.0001))))))


def dp_for_memorisation(s: Situation) -> Change | None:
    finding = s.diagnosis.finding(PRIVACY)
    if s.is_dp or finding is None or finding.excess < SEVERE_PRIVACY_EXCESS:
        return None
    return _switch_plugin(s, DP_FALLBACK_PLUGIN, f"membership AUC {finding.value:.3f} is memorisation")


def fewer_steps_for_privacy(s: Situation) -> Change | None:
    finding = s.diagnosis.finding(PRIVACY)
    if finding is None or (not s.is_dp and (finding.excess >= SEVERE_PRIVACY_EXCESS or s.failing(UTILITY, CORRELATION))):
        return None
    return _scale_steps(s, 0.5, f"membership AUC {finding.value:.3f} over {finding.threshold:.2f}: train less")


def _reopen_with_limit(s: Situation, key: str, limit: float, how: str) -> Change | None:
    """Re-open the study with the trials' constraint `key` lowered to `limit` (never raised)."""
    if limit >= float(s.tuning[key]):
        return None
    tuning, generation = _with(s, {key: limit, "n_trials": RETUNE_TRIALS, "reopen_study": s.study_name})
    return (f"re-open the tuning study with the trials' {how}; its trials that meet the new limit start the new "
            f"study, {RETUNE_TRIALS} new trials"), tuning, generation


def retune_with_tighter_privacy(s: Situation) -> Change | None:
    finding = s.diagnosis.finding(PRIVACY)
    if finding is None:
        return None
    current = min(float(s.tuning["mia_auc_max"]), finding.threshold)
    raw = round(current - finding.excess, 3)
    limit = round(max(MIA_LIMIT_FLOOR, raw), 3)
    how = f"MIA AUC limit {current:g} lowered by the excess {finding.excess:.3f} (value {finding.value:.3f}) to {raw:g}"
    if limit != raw:
        how += f", floored at {MIA_LIMIT_FLOOR:g} (0.5 is chance)"
    return _reopen_with_limit(s, "mia_auc_max", limit, how)


def dp_fallback(s: Situation) -> Change | None:
    if s.is_dp or not s.failing(PRIVACY):
        return None
    return _switch_plugin(s, DP_FALLBACK_PLUGIN, "non-private changes are used up")


def drop_training_copies(s: Situation) -> Change | None:
    if s.generation["drop_training_copies"]:
        return None
    tuning, generation = _with(s, generation={"drop_training_copies": True})
    return ("remove generated rows that copy a training row and generate replacements "
            f"(still {s.generation['num_rows'] or 'as many as training'} rows)"), tuning, generation


def fewer_steps_for_copies(s: Situation) -> Change | None:
    if s.failing(UTILITY, CORRELATION):
        return None
    return _scale_steps(s, 0.5, "copies are memorised rows: train less")


def retune_with_tighter_copy_limit(s: Situation) -> Change | None:
    finding = s.diagnosis.finding(DUPLICATES)
    if finding is None:
        return None
    current = min(float(s.tuning["exact_copy_rate_max"]), finding.threshold)
    limit = round(current / 2, 4)
    if limit < COPY_LIMIT_FLOOR:
        return None
    return _reopen_with_limit(s, "exact_copy_rate_max", limit, f"exact-copy limit {current:g} halved to {limit:g}")


def larger_batch(s: Situation, reason: str = "joint structure is off") -> Change | None:
    if s.failing(UTILITY):
        return None  # the marginals are off too: under-trained, train longer first (it serves both)
    cap = min(MAX_BATCH_SIZE, max(16, s.training_rows // 2))
    new = min(cap, s.batch_size * 2)
    if new <= s.batch_size:
        return None
    bound = f", capped at {cap:,} = min({MAX_BATCH_SIZE:,}, training rows / 2)" if new < s.batch_size * 2 else ""
    tuning, generation = _with(s, generation={"batch_size": new})
    return (f"{reason}: batch ×2 = {s.batch_size * 2:,}{bound} (same steps, more rows per step)",
            tuning, generation)


def wider_model(s: Situation, reason: str = "joint structure is off") -> Change | None:
    if s.failing(UTILITY) or s.plugin not in MODEL_WIDTH_PARAMETER:
        return None
    name, _ = MODEL_WIDTH_PARAMETER[s.plugin]
    new = min(MAX_MODEL_WIDTH, s.model_width * 2)
    if new <= s.model_width:
        return None
    bound = f", capped at {MAX_MODEL_WIDTH:,}" if new < s.model_width * 2 else ""
    tuning, generation = _with(s, generation={"model_width": new})
    return f"{reason}: wider model, {name} ×2 = {s.model_width * 2:,}{bound}", tuning, generation


def train_longer(s: Situation, failure: str) -> Change | None:
    finding = s.diagnosis.finding(failure)
    if finding is None or s.privacy_margin() < PRIVACY_SAFETY_MARGIN:
        return None  # not this failure; or training longer would push a barely passing membership AUC over
    factor = _steps_factor(s, failure)
    ratio = "threshold / value" if finding.relation == "under" else "value / threshold"
    text = (f"{finding.metric} {finding.value:.3f} {finding.relation} {finding.threshold:.2f} "
            f"(×{finding.ratio:.2f} = {ratio}): train longer, ×{factor:g} by that ratio")
    # An under-trained generator fails its marginals and its joint structure at once: train by the worse of the two,
    # not by the one this rule answers (KS ×3.9 and correlation ×1.2 asked for ×2, and 3 attempts later still failed).
    other = next((f for f in (UTILITY, CORRELATION) if f != failure and s.failing(f)), None) if failure in (UTILITY, CORRELATION) else None
    if other is not None and _steps_factor(s, other) > factor:
        worse = s.diagnosis.finding(other)
        factor = _steps_factor(s, other)
        text += f", raised to ×{factor:g} by {worse.metric} {worse.value:.3f} (×{worse.ratio:.2f}), which fails too"
    return _scale_steps(s, factor, text, at_least=s.learnt_steps)


def retune_more_trials(s: Situation) -> Change | None:
    tuning, generation = _with(s, {"n_trials": RETUNE_TRIALS})
    return (f"search further: {RETUNE_TRIALS} new trials in the same study (privacy constraints unchanged; the "
            "sampler continues where the study stands)"), tuning, generation


def retune_longer_trials(s: Situation) -> Change | None:
    steps = int(s.tuning["trial_steps"])
    new = min(MAX_TRAINING_STEPS, steps * 2)
    if new == steps:
        return None
    bound = f", capped at {MAX_TRAINING_STEPS:,}" if new < steps * 2 else ""
    tuning, generation = _with(s, {"trial_steps": new, "n_trials": NEW_STUDY_TRIALS})
    return (f"tune with longer trials: trial steps ×2 = {steps * 2:,}{bound}, {NEW_STUDY_TRIALS} trials in a new "
            "study under the new budget (trials of another budget are not comparable)"), tuning, generation


def _fidelity_change_refused(s: Situation, failure: str) -> bool:
    """The changes for the fidelity checks (detection AUC, TSTR ratio) are never made to a DP plugin, whose every
    fit spends privacy budget again (the optimizer spends it for privacy failures only) and whose noise is calibrated
    to its steps and batch; nor when the membership AUC passes by less than PRIVACY_SAFETY_MARGIN (more training,
    rows per step or capacity memorises more)."""
    return s.diagnosis.finding(failure) is None or s.is_dp or s.privacy_margin() < PRIVACY_SAFETY_MARGIN


def _fidelity_reason(s: Situation, failure: str, what: str) -> str:
    finding = s.diagnosis.finding(failure)
    return f"{what} ({finding.metric} {finding.value:.3f} {finding.relation} {finding.threshold:.2f})"


def train_longer_for_fidelity(s: Situation, failure: str) -> Change | None:
    return None if _fidelity_change_refused(s, failure) else train_longer(s, failure)


def wider_model_for_fidelity(s: Situation) -> Change | None:
    if _fidelity_change_refused(s, FIDELITY):
        return None
    return wider_model(s, _fidelity_reason(s, FIDELITY, "synthetic rows are told from real ones"))


def larger_batch_for_downstream(s: Situation) -> Change | None:
    if _fidelity_change_refused(s, DOWNSTREAM):
        return None
    return larger_batch(s, _fidelity_reason(s, DOWNSTREAM, "models trained on synthetic rows predict worse"))


def retune_for_fidelity(s: Situation, failure: str) -> Change | None:
    if s.diagnosis.finding(failure) is None or s.is_dp:
        return None  # new trials of a DP plugin are fits that spend privacy budget
    return retune_more_trials(s)


def switch_to_ddpm(s: Situation) -> Change | None:
    if s.is_dp:
        return None  # a DP plugin is the user's privacy policy: never traded for utility
    return _switch_plugin(s, "ddpm", "the plugin cannot reach the marginals")


POLICY: tuple[PolicyRule, ...] = (
    PolicyRule("dp_for_memorisation", PRIVACY, f"MIA AUC ≥ threshold + {SEVERE_PRIVACY_EXCESS}, non-DP plugin",
               f"switch to {DP_FALLBACK_PLUGIN} with the policy's epsilon; steps and batch from the table's size",
               "strong memorisation: only a differential-privacy guarantee bounds what an attack learns", dp_for_memorisation),
    PolicyRule("fewer_steps_for_privacy", PRIVACY, "MIA AUC fails by less than that and no utility check fails (any excess for DP plugins)",
               f"halve the final training steps (not below {MIN_TRAINING_STEPS})",
               "memorisation grows with training; the cheapest change that keeps the model", fewer_steps_for_privacy),
    PolicyRule("retune_with_tighter_privacy", PRIVACY, "MIA AUC fails (also when utility fails: it serves both)",
               f"re-open the study with the trials' MIA limit lowered by the excess (not below {MIA_LIMIT_FLOOR:g}), {RETUNE_TRIALS} new trials, earlier trials that meet it enqueued",
               "the study picks the most useful parameters among those that pass a stricter privacy test", retune_with_tighter_privacy),
    PolicyRule("dp_fallback", PRIVACY, "MIA AUC still fails, non-DP plugin", f"switch to {DP_FALLBACK_PLUGIN} with the policy's epsilon",
               "the non-private remedies are used up", dp_fallback),
    PolicyRule("drop_training_copies", DUPLICATES, "exact-copy rate fails, de-duplication off",
               "remove generated rows that copy a training row, regenerate to the same row count; removals counted in metadata",
               "a verbatim training row is a disclosure whatever the model", drop_training_copies),
    PolicyRule("fewer_steps_for_copies", DUPLICATES, "copies still fail, no utility check fails", "halve the final training steps",
               "copies are memorised rows", fewer_steps_for_copies),
    PolicyRule("retune_with_tighter_copy_limit", DUPLICATES, "copies still fail", f"re-open the study with the trials' copy limit halved (not below {COPY_LIMIT_FLOOR:g}), {RETUNE_TRIALS} new trials",
               "pick parameters that copy less", retune_with_tighter_copy_limit),
    PolicyRule("larger_batch", CORRELATION, f"correlation delta fails (KS passes), batch below min({MAX_BATCH_SIZE}, rows/2)", "double the batch size",
               "each step sees more rows, so the joint structure is estimated better (the TabDDPM paper tunes batches up to 4096)", larger_batch),
    PolicyRule("wider_model", CORRELATION, f"correlation delta still fails (KS passes), width below {MAX_MODEL_WIDTH}",
               "double the model's embedding / hidden units", "more capacity for interactions between columns", wider_model),
    PolicyRule("train_longer_for_correlation", CORRELATION, f"correlation delta still fails, or KS fails too; MIA margin ≥ {PRIVACY_SAFETY_MARGIN}",
               "multiply training steps by 2, 4 or 8 (by value / threshold)", "joint structure is learnt late",
               lambda s: train_longer(s, CORRELATION)),
    PolicyRule("retune_for_correlation", CORRELATION, "correlation delta still fails", f"{RETUNE_TRIALS} new tuning trials in the same study",
               "search further under the same privacy constraints", retune_more_trials),
    PolicyRule("train_longer", UTILITY, f"KS mean fails, MIA margin ≥ {PRIVACY_SAFETY_MARGIN}",
               f"multiply training steps by 2, 4 or 8 (by value / threshold), at most {MAX_TRAINING_STEPS}",
               "an under-trained generator has not learnt the marginals", lambda s: train_longer(s, UTILITY)),
    PolicyRule("retune_longer_trials", UTILITY, "KS mean still fails", f"double the trials' steps (at most {MAX_TRAINING_STEPS:,}), {NEW_STUDY_TRIALS} trials in a new study",
               "trials that train too briefly rank parameters by early progress, not by where they end", retune_longer_trials),
    PolicyRule("switch_to_ddpm", UTILITY, "KS mean still fails with ctgan / tvae", "switch to ddpm, steps and batch from the table's size",
               "TabDDPM matches marginals best on mixed tables (never applied to a DP plugin: DP is policy)", switch_to_ddpm),
    # The fidelity checks (they warn unless fidelity_checks_blocking): never for a DP plugin (every fit spends privacy
    # budget again), never when the membership AUC passes by less than PRIVACY_SAFETY_MARGIN.
    PolicyRule("train_longer_for_fidelity", FIDELITY, f"detection AUC fails, non-DP plugin, MIA margin ≥ {PRIVACY_SAFETY_MARGIN}",
               "multiply training steps by 2, 4 or 8 (by value / threshold)",
               "a classifier first separates the rows of an under-trained generator", lambda s: train_longer_for_fidelity(s, FIDELITY)),
    PolicyRule("wider_model_for_fidelity", FIDELITY, f"detection AUC still fails (KS passes), non-DP plugin, MIA margin ≥ {PRIVACY_SAFETY_MARGIN}, width below {MAX_MODEL_WIDTH}",
               "double the model's embedding / hidden units", "more capacity for the combinations of columns the detector separates on",
               wider_model_for_fidelity),
    PolicyRule("retune_for_fidelity", FIDELITY, "detection AUC still fails, non-DP plugin", f"{RETUNE_TRIALS} new tuning trials in the same study",
               "search further under the same privacy constraints", lambda s: retune_for_fidelity(s, FIDELITY)),
    PolicyRule("train_longer_for_downstream", DOWNSTREAM, f"TSTR/TRTR ratio fails, non-DP plugin, MIA margin ≥ {PRIVACY_SAFETY_MARGIN}",
               "multiply training steps by 2, 4 or 8 (by threshold / value)",
               "the target's dependence on the other columns is learnt late", lambda s: train_longer_for_fidelity(s, DOWNSTREAM)),
    PolicyRule("larger_batch_for_downstream", DOWNSTREAM, f"TSTR/TRTR ratio still fails (KS passes), non-DP plugin, MIA margin ≥ {PRIVACY_SAFETY_MARGIN}, batch below min({MAX_BATCH_SIZE}, rows/2)",
               "double the batch size", "each step sees more rows, so the conditional structure a model predicts from is estimated better",
               larger_batch_for_downstream),
    PolicyRule("retune_for_downstream", DOWNSTREAM, "TSTR/TRTR ratio still fails, non-DP plugin", f"{RETUNE_TRIALS} new tuning trials in the same study",
               "search further under the same privacy constraints", lambda s: retune_for_fidelity(s, DOWNSTREAM)),
)
RULES = {rule.name: rule for rule in POLICY}


def comparable(tuning: dict[str, Any], generation: dict[str, Any]) -> tuple:
    """A hashable form of a config, to recognise one an earlier attempt has tried."""
    return tuple(sorted(tuning.items(), key=str)), tuple(sorted(generation.items(), key=str))


def _rule_order(failure: str, ranking: dict[str, Sequence[str]] | None) -> list[PolicyRule]:
    """The rules answering `failure`, in the learnt order when one is given (rules it does not name keep their
    hand-written place after the named ones), else in `POLICY` order."""
    rules = [r for r in POLICY if r.failure == failure]
    if not ranking or not ranking.get(failure):
        return rules
    named = [RULES[name] for name in ranking[failure] if name in RULES and RULES[name].failure == failure]
    return named + [r for r in rules if r not in named]


def plan_next_attempt(
    situation: Situation,
    *,
    attempt: int,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    tried: Sequence[tuple[dict[str, Any], dict[str, Any]]] = (),
    avoid_rules: Collection[str] = (),
    worse_rules: Sequence[str] = (),
    ranking: dict[str, Sequence[str]] | None = None,
) -> Plan:
    """The next config for a failed run at `attempt` (0 for a first run), or why there is none.

    Failures are answered in priority order; once a privacy failure (MIA, copies) has no rule left, the plan stops
    rather than falling through to utility rules that would leak more. `tried` holds the configs of every earlier
    attempt of the chain (the failed run's own included): a rule whose config is among them is passed over.
    `avoid_rules` are rules whose attempt in this chain made its target metric worse or changed nothing: not
    repeated. The opposites (`OPPOSITE_RULES`) of `worse_rules` are tried first, when they apply to a failing check.
    `ranking` orders the rules within each failure kind (the learnt order; default the hand-written one)."""
    from synth_platform.optimizer.learning import OPPOSITE_RULES

    diagnosis = situation.diagnosis
    if not diagnosis.findings:
        return Plan(diagnosis, None, "every check passed: nothing to change")
    if attempt >= max_attempts:
        return Plan(diagnosis, None, f"attempt cap {max_attempts} reached")
    seen = {comparable(t, g) for t, g in tried}
    seen.add(comparable(situation.tuning, situation.generation))
    avoided = set(avoid_rules)
    considered: list[str] = []

    def proposal(rule: PolicyRule, note: str = "") -> Proposal | None:
        if rule.name in avoided:
            considered.append(f"{rule.name}: made its target worse or changed nothing earlier in this chain")
            return None
        change = rule.propose(situation)
        if change is None:
            considered.append(f"{rule.name}: does not apply")
            return None
        text, tuning, generation = change
        if comparable(tuning, generation) in seen:
            considered.append(f"{rule.name}: tried before")
            return None
        return Proposal(rule.name, rule.failure, f"{note}{text} [{changed_fields(situation, tuning, generation)}]", tuning, generation)

    for worse in worse_rules:  # the other direction first, when it answers a failing check
        opposite = RULES.get(OPPOSITE_RULES.get(worse, ""))
        if opposite is not None and opposite.failure in diagnosis.failures:
            found = proposal(opposite, f"{worse} made things worse, so its opposite: ")
            if found is not None:
                return Plan(diagnosis, found, considered=tuple(considered))
    for failure in FAILURE_PRIORITY:
        if failure not in diagnosis.failures:
            continue
        for rule in _rule_order(failure, ranking):
            found = proposal(rule)
            if found is not None:
                return Plan(diagnosis, found, considered=tuple(considered))
        if failure in PRIVACY_FAILURES:
            return Plan(diagnosis, None, f"no untried change is left for the {failure} failure "
                        "(utility changes would leak more); lower epsilon or the data's detail by hand", tuple(considered))
    return Plan(diagnosis, None, "no untried change is left for " + ", ".join(diagnosis.failures), tuple(considered))


def policy_markdown() -> str:
    """The policy table for people (docs/optimizer.md, run metadata), in the order rules are tried."""
    lines = [
        "Failures are answered in this order: " + " > ".join(FAILURE_PRIORITY) + " (privacy first). Within a failure, "
        "the first rule that applies and gives a config no earlier attempt tried is used. Rules that change the final "
        f"fit only add no tuning trials (the study's best is reused); a re-tune adds {RETUNE_TRIALS}, a new study runs "
        f"{NEW_STUDY_TRIALS}. Within a chain, a rule whose attempt made its target metric worse (or changed nothing) is "
        "not repeated and its opposite goes first; across chains, the rules of each failure are ranked by their "
        "recorded success on similar datasets, with this order as the prior (`python -m synth_platform.cli policy`).",
        "",
        "| # | failure | rule | when | change | why |",
        "|---|---|---|---|---|---|",
    ]
    for number, rule in enumerate(POLICY, 1):
        lines.append(f"| {number} | {rule.failure} | `{rule.name}` | {rule.when} | {rule.change} | {rule.why} |")
    return "\n".join(lines)
