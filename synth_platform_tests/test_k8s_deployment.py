"""The Kubernetes recipe (deploy/, docs/deployment.md), checked without a cluster and without a
network: every file is parsed and validated by the code that will read it in the cluster (Dagster's instance
schema, dagster-postgres's and dagster-k8s's config schemas, dagster-k8s's tag parser and Job builder), the run
queue's training limit is compared with dagster.yaml's, and values.yaml is searched for literal secrets. What this
cannot show: that `helm` renders values.yaml as dagster.k8s.yaml says (no chart here), that the image builds, or
that a cluster schedules the pods (no cluster). Mutated copies of the files show that the checks can fail."""

from __future__ import annotations

import copy
import importlib
import json
import re
import socket
import tomllib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.definitions.assets.job.asset_job import is_reserved_asset_job_name
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.dagster_run import DagsterRun
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    USER_DEFINED_K8S_CONFIG_KEY,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)

from synth_platform.definitions import defs
from synth_platform.jobs import TRAINING_TAG
from synth_platform.tables import load_tables

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
LOCAL_INSTANCE = REPO / "dagster.yaml"
K8S_INSTANCE = K8S / "dagster.k8s.yaml"
VALUES = K8S / "values.yaml"
TRAINING = K8S / "training_run_config.yaml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"

SECRET = "synth-platform-secrets"
NAMESPACE = "synth-platform"
IMAGE = "registry.example.com/synth-platform:0.1.0"
GPU = "nvidia.com/gpu"
GPU_NODE_LABEL = {"nvidia.com/gpu.present": "true"}
# The ops that train, named as k8s_job_executor keys per_step_k8s_config (a step's innermost op name): each share of
# the tuning trials (inside the tuned_hyperparameters graph) and the final fit.
TRAINING_OPS = {"run_trials_step", "synthetic_table"}
# What the platform reads from its environment that may hold a credential (each table's source env names too).
SECRET_ENV = {"SYNTH_SOURCE_URL", "SYNTH_SOURCE_PASSWORD", "SYNTH_OPTUNA_STORAGE", "SYNTH_AUDIT_URL",
              "SYNTH_TUNING_MEMORY_URL", "MLFLOW_TRACKING_URI", "SYNTH_STORAGE_KEY"} | {
    name for spec in load_tables() for name in (spec.source_url_env, spec.source_password_env) if name}
SECRET_ENV_PATTERN = re.compile(r"^(SYNTH|MLFLOW)_\w*(URL|URI|PASSWORD|KEY|STORAGE)$")

LOOPBACK_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Nothing here may reach the network: a connection or name lookup beyond loopback fails the test."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def loopback(host) -> bool:
        host = host.decode() if isinstance(host, bytes) else str(host)
        return host in ("localhost", "::1", "None") or host.startswith("127.")

    def guard(address):
        if isinstance(address, tuple) and not loopback(address[0]):
            raise AssertionError(f"the k8s deployment test tried to reach {address}")

    def connect(self, address):
        guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        guard(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        guard((host,))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def k8s_env(monkeypatch):
    """The environment variables dagster.k8s.yaml reads, as the chart and the run launcher set them in a pod."""
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "placeholder-for-the-test")
    monkeypatch.setenv("DAGSTER_K8S_JOB_NAMESPACE", NAMESPACE)


def instance_config(config: dict | Path, directory: Path) -> dict:
    """`config` (a file or a mapping) validated by Dagster as the dagster.yaml of `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    text = config.read_text() if isinstance(config, Path) else yaml.safe_dump(config)
    (directory / "dagster.yaml").write_text(text)
    value, _ = dagster_instance_config(str(directory))
    return dict(value)


def process_class_config(section: dict):
    """A `module`/`class`/`config` entry processed with the class's own config schema, as the instance does when it
    builds it (environment variables resolved)."""
    cls = getattr(importlib.import_module(section["module"]), section["class"])
    return process_config(cls.config_type(), section.get("config") or {})


def launcher_config() -> dict:
    return load(K8S_INSTANCE)["run_launcher"]["config"]


def offline_launcher(tmp_path: Path) -> K8sRunLauncher:
    """The K8sRunLauncher of dagster.k8s.yaml, built by dagster-k8s from its processed config. In a pod it loads the
    in-cluster config; here a kubeconfig naming a loopback server stands in (nothing is contacted: the launcher
    only talks to the API server when it launches or inspects a run)."""
    result = process_config(K8sRunLauncher.config_type(), launcher_config())
    assert result.success, result.errors
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(LOOPBACK_KUBECONFIG)
    value = {**result.value, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    return K8sRunLauncher.from_config_value(None, value)


def run_pod(launcher: K8sRunLauncher, tags: dict[str, str]):
    """The pod spec of the Job K8sRunLauncher would create for a run with `tags` (the calls of its
    `_launch_k8s_job_with_args`, without the API call)."""
    run = DagsterRun(job_name="adult_synthesis_job", run_id="0" * 8, tags=tags)
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    job = construct_dagster_k8s_job(context.get_k8s_job_config(job_image=IMAGE, run_launcher=launcher),
                                    args=["dagster", "api", "execute_run"], job_name="dagster-run-test",
                                    user_defined_k8s_config=context.run_k8s_config, component="run_worker")
    return job.spec.template


def step_pod(launcher: K8sRunLauncher, executor_config: dict, op_name: str):
    """The pod spec of a k8s_job_executor step pod for op `op_name`: the merge of K8sStepHandler's
    `_get_container_context` (run launcher, executor's step_k8s_config, per_step_k8s_config), then its Job."""
    run = DagsterRun(job_name="adult_synthesis_job", run_id="0" * 8, tags={TRAINING_TAG: "true"})
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False)
    context = context.merge(K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
        executor_config.get("step_k8s_config", {}))))
    context = context.merge(K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
        executor_config.get("per_step_k8s_config", {}).get(op_name, {}))))
    job = construct_dagster_k8s_job(context.get_k8s_job_config(job_image=IMAGE, run_launcher=launcher),
                                    args=["dagster", "api", "execute_step"], job_name="dagster-step-test",
                                    user_defined_k8s_config=context.run_k8s_config, component="step_worker")
    return job.spec.template


def gpu_limit(template) -> str | None:
    limits = template.spec.containers[0].resources.limits if template.spec.containers[0].resources else None
    return (limits or {}).get(GPU)


def gpu_tolerated(template) -> bool:
    tolerations = template.spec.tolerations or []
    return any(t.key == GPU and t.operator == "Exists" and t.effect == "NoSchedule" for t in tolerations)


# (a) dagster.k8s.yaml against Dagster's and dagster-k8s's schemas


def test_k8s_instance_passes_dagsters_instance_schema_and_each_class_its_own(k8s_env, tmp_path):
    config = instance_config(K8S_INSTANCE, tmp_path / "home")
    sections = {name: section for name, section in config.items() if isinstance(section, dict) and "class" in section}
    assert set(sections) == {"scheduler", "schedule_storage", "run_storage", "event_log_storage", "run_launcher",
                             "run_coordinator"}
    for name, section in sections.items():
        result = process_class_config(section)
        assert result.success, (name, result.errors)
    launcher = config["run_launcher"]
    assert getattr(importlib.import_module(launcher["module"]), launcher["class"]) is K8sRunLauncher
    assert config["telemetry"] == {"enabled": False}
    assert config["run_retries"]["enabled"] is False and config["sensors"]["use_threads"] is False
    assert config["run_monitoring"]["enabled"] is True
    # The storages: one PostgreSQL, its password from the environment, never written here.
    postgres = {name: process_class_config(sections[name]).value["postgres_db"]
                for name in ("schedule_storage", "run_storage", "event_log_storage")}
    assert len({json.dumps(db, sort_keys=True) for db in postgres.values()}) == 1
    assert postgres["run_storage"]["password"] == "placeholder-for-the-test"
    assert sections["run_storage"]["config"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert postgres["run_storage"]["scheme"] == "postgresql+psycopg2"


def test_run_launcher_config_is_k8s_run_launcher_config(k8s_env):
    result = process_config(K8sRunLauncher.config_type(), launcher_config())
    assert result.success, result.errors
    value = result.value
    assert value["job_namespace"] == NAMESPACE  # read from the environment
    assert value["load_incluster_config"] is True and value["kubeconfig_file"] is None
    assert value["service_account_name"] == "dagster" and value["instance_config_map"] == "dagster-instance"
    assert value["postgres_password_secret"] == "dagster-postgresql-secret"
    assert value["env_secrets"] == [SECRET] and value["env_config_maps"] == ["synth-platform-config"]
    assert value["dagster_home"] == "/opt/dagster/dagster_home"
    assert {m["mountPath"] for m in value["volume_mounts"]} == {"/opt/dagster/dagster_home/storage",
                                                               "/opt/dagster/dagster_home/synth_platform"}
    assert value["run_k8s_config"]["pod_spec_config"] == {"securityContext": {"fsGroup": 1000}}


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c.update(env_secret=c.pop("env_secrets")), 'unexpected config entry "env_secret"'),
    (lambda c: c.update(service_acount_name=c.pop("service_account_name")), '"service_acount_name"'),
    (lambda c: c["run_k8s_config"].update(pod_config=c["run_k8s_config"].pop("pod_spec_config")), '"pod_config"'),
    (lambda c: c.pop("instance_config_map"), "instance_config_map"),
    (lambda c: c.update(env_secrets=SECRET), "env_secrets"),
])
def test_a_broken_run_launcher_config_is_rejected(k8s_env, mutate, expected):
    config = copy.deepcopy(launcher_config())
    mutate(config)
    result = process_config(K8sRunLauncher.config_type(), config)
    assert not result.success
    assert expected in " ".join(error.message for error in result.errors)


def test_the_run_launcher_needs_its_namespace_variable(k8s_env, monkeypatch):
    monkeypatch.delenv("DAGSTER_K8S_JOB_NAMESPACE")
    result = process_config(K8sRunLauncher.config_type(), launcher_config())
    assert not result.success and "DAGSTER_K8S_JOB_NAMESPACE" in str([e.message for e in result.errors])


def test_a_broken_instance_is_rejected(k8s_env, tmp_path):
    config = load(K8S_INSTANCE)
    config["run_monitoring"]["max_resume_attempts"] = config["run_monitoring"].pop("max_resume_run_attempts")
    with pytest.raises(DagsterInvalidConfigError, match="max_resume_attempts"):
        instance_config(config, tmp_path / "bad")
    config = load(K8S_INSTANCE)
    postgres_db = config["schedule_storage"]["config"]["postgres_db"]
    postgres_db["hostnme"] = postgres_db.pop("hostname")
    assert not process_class_config(config["schedule_storage"]).success


def test_dagster_k8s_builds_the_run_pod_offline(k8s_env, tmp_path):
    launcher = offline_launcher(tmp_path)
    template = run_pod(launcher, {TRAINING_TAG: "true"})
    spec, container = template.spec, template.spec.containers[0]
    assert spec.service_account_name == "dagster" and container.image == IMAGE
    assert [(s.secret_ref.name if s.secret_ref else None) for s in container.env_from] == [None, SECRET]
    env = {e.name: e for e in container.env}
    assert env["DAGSTER_PG_PASSWORD"].value_from.secret_key_ref.name == "dagster-postgresql-secret"
    assert env["DAGSTER_K8S_JOB_NAMESPACE"].value_from.field_ref.field_path == "metadata.namespace"
    assert not SECRET_ENV & set(env), "secrets come from the Secret (envFrom), never as env values"
    assert [v.persistent_volume_claim.claim_name for v in spec.volumes] == ["synth-platform-storage"]
    assert spec.security_context.fs_group == 1000
    assert template.metadata.annotations == {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
    assert gpu_limit(template) is None and not spec.node_selector  # no tag: no GPU


# (b) the run queue's training limit


def concurrency_limits(config: dict | Path, directory: Path) -> list[dict]:
    """The tag concurrency limits of the run queue, as a Dagster instance resolves them from `config` (a
    PostgreSQL storage and the K8sRunLauncher are left out: the queue does not depend on them, and building them
    would connect to a database and a cluster)."""
    config = load(config) if isinstance(config, Path) else copy.deepcopy(config)
    for section in ("storage", "schedule_storage", "run_storage", "event_log_storage", "run_launcher"):
        config.pop(section, None)
    instance_config(config, directory)
    with dg.DagsterInstance.from_config(str(directory)) as instance:
        return list(instance.get_concurrency_config().run_queue_config.tag_concurrency_limits)


def test_the_k8s_run_queue_limits_training_as_dagster_yaml_does(k8s_env, tmp_path):
    local = concurrency_limits(LOCAL_INSTANCE, tmp_path / "local")
    assert local == [{"key": TRAINING_TAG, "value": "true", "limit": 1}]
    assert concurrency_limits(K8S_INSTANCE, tmp_path / "k8s") == local
    changed = load(K8S_INSTANCE)
    changed["run_coordinator"]["config"]["tag_concurrency_limits"][0]["limit"] = 2
    assert concurrency_limits(changed, tmp_path / "changed") != local


# (c) step per pod: the k8s_job_executor config and a code location built with it


def executor_config() -> dict:
    return load(TRAINING)["k8s_job_executor"]


def test_executor_config_is_k8s_job_executor_config():
    result = process_config(k8s_job_executor.config_schema.config_type, executor_config())
    assert result.success, result.errors
    assert result.value["max_concurrent"] == 1
    broken = {**executor_config(), "max_concurent": 1}
    assert not process_config(k8s_job_executor.config_schema.config_type, broken).success
    broken = copy.deepcopy(executor_config())
    broken["step_k8s_config"]["pod_config"] = {}
    assert not process_config(k8s_job_executor.config_schema.config_type, broken).success


def _op_names(job: dg.JobDefinition) -> set[str]:
    """The op names of the job's steps, ops inside graph-backed assets included: what per_step_k8s_config matches."""
    return {handle.name for handle in job.graph.iterate_node_handles() if not isinstance(job.graph.get_node(handle).definition, dg.GraphDefinition)}


def test_the_platform_loads_with_the_k8s_job_executor():
    executor = k8s_job_executor.configured(executor_config())
    step_per_pod = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs,
                                  schedules=defs.schedules, sensors=defs.sensors, resources=defs.resources,
                                  executor=executor)
    dg.Definitions.validate_loadable(step_per_pod)
    training_jobs = [job for job in step_per_pod.resolve_all_job_defs() if job.tags.get(TRAINING_TAG) == "true"]
    assert {job.name for job in training_jobs} >= {"adult_synthesis_job", "adult_resynthesis_job"}
    for job in step_per_pod.resolve_all_job_defs():
        assert job.executor_def.name == k8s_job_executor.name, job.name
        if is_reserved_asset_job_name(job.name):
            continue  # Dagster's implicit job of ad-hoc materializations carries no job tags (docs/deployment.md: use the jobs)
        # The GPU steps are in training jobs only, whose runs the run queue's training limit counts.
        assert bool(TRAINING_OPS & _op_names(job)) == (job.tags.get(TRAINING_TAG) == "true"), job.name
    for job in training_jobs:
        assert TRAINING_OPS <= _op_names(job), job.name
    assert set(executor_config()["per_step_k8s_config"]) == TRAINING_OPS


def test_only_training_steps_get_a_gpu(k8s_env, tmp_path):
    launcher = offline_launcher(tmp_path)
    for op in TRAINING_OPS:
        template = step_pod(launcher, executor_config(), op)
        assert gpu_limit(template) == "1" and gpu_tolerated(template), op
        assert template.spec.node_selector == GPU_NODE_LABEL, op
        assert template.spec.containers[0].resources.requests == {"cpu": "2", "memory": "8Gi"}, op  # deep-merged
        assert template.spec.security_context.fs_group == 1000, op  # the run launcher's run_k8s_config too
    for op in ("profiled_dataset", "open_study_step", "choose_parameters_step"):
        other = step_pod(launcher, executor_config(), op)
        assert gpu_limit(other) is None and not other.spec.node_selector and not gpu_tolerated(other), op


# (d) run per pod: the dagster-k8s/config tag of training runs


def test_the_training_tag_parses_with_dagster_k8s(k8s_env, tmp_path):
    training = load(TRAINING)
    tags = training["run_tags"]
    assert set(tags) == {USER_DEFINED_K8S_CONFIG_KEY} and isinstance(tags[USER_DEFINED_K8S_CONFIG_KEY], str)
    assert json.loads(tags[USER_DEFINED_K8S_CONFIG_KEY]) == training["gpu_k8s_config"]
    parsed = get_user_defined_k8s_config(tags)
    assert parsed.pod_spec_config["node_selector"] == GPU_NODE_LABEL
    assert parsed.pod_spec_config["tolerations"] == [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    assert parsed.container_config["resources"]["limits"] == {GPU: "1"}
    # Through K8sRunLauncher: the tag's placement and GPU, deep-merged over the launcher's run_k8s_config.
    template = run_pod(offline_launcher(tmp_path), {TRAINING_TAG: "true", **tags})
    assert gpu_limit(template) == "1" and template.spec.node_selector == GPU_NODE_LABEL and gpu_tolerated(template)
    assert template.spec.security_context.fs_group == 1000
    assert template.metadata.annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"


@pytest.mark.parametrize("tag", [
    {"pod_spec_config": {"node_selectr": GPU_NODE_LABEL}},
    {"pod_config": {"node_selector": GPU_NODE_LABEL}},
    {"container_config": {"resource": {"limits": {GPU: "1"}}}},
])
def test_a_misspelled_tag_is_rejected(tag):
    with pytest.raises(Exception, match="node_selectr|pod_config|resource"):
        get_user_defined_k8s_config({USER_DEFINED_K8S_CONFIG_KEY: json.dumps(tag)})


# (e) values.yaml: the code location, the launcher, the queue, and no literal secret


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_values_run_synth_platform_with_the_k8s_run_launcher():
    values, instance = load(VALUES), load(K8S_INSTANCE)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert values["dagster-user-deployments"]["enabled"] is True
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "synth_platform.definitions"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == "synth_platform.definitions"
    assert isinstance(importlib.import_module("synth_platform.definitions").defs, dg.Definitions)
    assert {s["name"] for s in deployment["envSecrets"]} == {SECRET}
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher, rendered = values["runLauncher"]["config"]["k8sRunLauncher"], instance["run_launcher"]["config"]
    assert [s["name"] for s in launcher["envSecrets"]] == rendered["env_secrets"]
    assert [c["name"] for c in launcher["envConfigMaps"]] == rendered["env_config_maps"]
    assert launcher["volumes"] == rendered["volumes"] == deployment["volumes"]
    assert launcher["volumeMounts"] == rendered["volume_mounts"] == deployment["volumeMounts"]
    assert {camel_to_snake(k): v for k, v in launcher["runK8sConfig"].items()} == rendered["run_k8s_config"]
    assert launcher["loadInclusterConfig"] == rendered["load_incluster_config"]
    assert launcher["imagePullPolicy"] == rendered["image_pull_policy"]
    # The same external PostgreSQL, its password only in the Secret.
    pg, db = values["postgresql"], instance["run_storage"]["config"]["postgres_db"]
    assert pg["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"] == rendered["postgres_password_secret"]
    assert (pg["postgresqlHost"], pg["postgresqlUsername"], pg["postgresqlDatabase"], pg["service"]["port"],
            pg["postgresqlParams"], pg["postgresqlScheme"]) == (
        db["hostname"], db["username"], db["db_name"], db["port"], db["params"], db["scheme"])
    assert values["telemetry"]["enabled"] is False


def test_values_queue_training_runs_as_dagster_yaml_does():
    values, local, instance = load(VALUES), load(LOCAL_INSTANCE), load(K8S_INSTANCE)
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert limits == local["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == instance["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert "concurrency" not in values  # the chart refuses both places at once
    daemon = values["dagsterDaemon"]
    assert daemon["runRetries"]["enabled"] is False and daemon["sensors"]["useThreads"] is False
    assert daemon["runMonitoring"]["enabled"] is True
    assert daemon["runMonitoring"]["maxResumeRunAttempts"] == instance["run_monitoring"]["max_resume_run_attempts"]


CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/@:]+:[^\s/@]+@", re.IGNORECASE)
PASSWORD_IN_QUERY = re.compile(r"[?&](password|pass|pwd)=", re.IGNORECASE)
CREDENTIAL_KEY = re.compile(r"password|passwd|token|api_?key|secret_?key|credential", re.IGNORECASE)
REFERENCE_KEY = re.compile(r"secret(_?name)?$", re.IGNORECASE)  # names a Secret, e.g. postgres_password_secret


def secret_env_name(name: str) -> bool:
    return name in SECRET_ENV or bool(SECRET_ENV_PATTERN.match(name))


def env_not_from_a_secret(env: Any) -> list[str]:
    """The variables an `env` entry sets other than from a Secret: a mapping's non-empty values, a list's
    `NAME=value` strings and its entries without `valueFrom.secretKeyRef`."""
    if isinstance(env, dict):
        return [name for name, value in env.items() if value not in (None, "")]
    names = []
    for entry in env or []:
        if isinstance(entry, dict):
            source = entry.get("valueFrom") or entry.get("value_from") or {}
            if "secretKeyRef" not in source and "secret_key_ref" not in source:
                names.append(entry.get("name", ""))
        elif "=" in str(entry) and str(entry).partition("=")[2]:
            names.append(str(entry).partition("=")[0])
    return names


def literal_secrets(node: Any, path: str = "") -> list[str]:
    """Where `node` (a parsed YAML file) holds something that looks like a credential written in: a URL with a
    password, a password-like key with a value, or a secret environment variable given a value instead of coming
    from a Secret."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            names_a_credential = CREDENTIAL_KEY.search(str(key)) and not REFERENCE_KEY.search(str(key))
            if isinstance(value, str) and value and names_a_credential:
                found.append(here)
            if key in ("env", "envVars", "env_vars"):
                found += [f"{here}.{name}" for name in env_not_from_a_secret(value) if secret_env_name(name)]
            found += literal_secrets(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += literal_secrets(value, f"{path}[{i}]")
    elif isinstance(node, str) and (CREDENTIAL_URL.search(node) or PASSWORD_IN_QUERY.search(node)):
        found.append(path)
    return sorted(set(found))


def test_no_literal_secret_in_the_deployment_files():
    for path in (VALUES, K8S_INSTANCE, TRAINING):
        assert literal_secrets(load(path)) == [], path.name
    values = load(VALUES)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    # Every secret the platform reads reaches the code server and the run pods from the Secret, by name.
    assert SECRET in {s["name"] for s in deployment["envSecrets"]}
    assert SECRET in {s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}


@pytest.mark.parametrize("mutate, where", [
    (lambda v: v["postgresql"].update(postgresqlPassword="hunter2"), ".postgresql.postgresqlPassword"),
    (lambda v: v["dagster-user-deployments"]["deployments"][0].update(
        env={"SYNTH_SOURCE_URL": "postgresql://reader:hunter2@db/source"}),
     ".dagster-user-deployments.deployments[0].env.SYNTH_SOURCE_URL"),
    (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["env"].append(
        {"name": "SYNTH_OPTUNA_STORAGE", "value": "postgresql+psycopg2://optuna@db/optuna"}),
     ".runLauncher.config.k8sRunLauncher.runK8sConfig.containerConfig.env.SYNTH_OPTUNA_STORAGE"),
    (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(envVars=["SYNTH_STORAGE_KEY=abc"]),
     ".runLauncher.config.k8sRunLauncher.envVars.SYNTH_STORAGE_KEY"),
    (lambda v: v["dagsterDaemon"].update(env={"DATABASE": "postgres://u:p@h/d"}), ".dagsterDaemon.env.DATABASE"),
])
def test_a_literal_secret_in_values_is_found(mutate, where):
    values = load(VALUES)
    mutate(values)
    assert where in literal_secrets(values)


def test_the_image_and_the_lock():
    dockerfile = DOCKERFILE.read_text()
    assert [line for line in dockerfile.splitlines() if line.startswith("FROM")] == ["FROM python:3.11-slim"]
    assert dockerfile.index("pip install -r requirements.lock") < dockerfile.index("pip install --no-deps")
    for copied in ("COPY tables.yaml", "COPY sql", "COPY synth_platform"):  # what the package reads beside itself
        assert copied in dockerfile
    for variable in ("MLFLOW_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=true"):
        assert variable in dockerfile
    lock = dict(line.split("==") for line in (REPO / "requirements.lock").read_text().split())
    from importlib.metadata import version

    assert lock["dagster-k8s"] == version("dagster-k8s")
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"dagster-k8s=={lock['dagster-k8s']}" in dependencies
    assert f"--version {lock['dagster']}" in VALUES.read_text()  # the chart's version is Dagster's
