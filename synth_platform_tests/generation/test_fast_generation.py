"""Fast ddpm sampling (a respaced chain, large batches), chunked generation, threads and device."""

import os

import numpy as np
import pandas as pd
import pytest

from synth_platform.evaluation import metrics
from synth_platform.generation import generators
from synth_platform.generation.ddpm_sampling import strided_timesteps
from synth_platform.generation.generators import GenerationError, fit_generator, iter_sample, sample
from synth_platform.profiling.profile import decode_from_generation, encode_for_generation, profile_dataframe


def test_strided_timesteps_run_from_the_last_to_the_first():
    assert strided_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert strided_timesteps(10, 50) == list(range(9, -1, -1))  # never more than the model has
    assert strided_timesteps(1000, 1) == [0]
    with pytest.raises(ValueError, match="at least 1"):
        strided_timesteps(1000, 0)


@pytest.fixture(scope="module")
def ddpm(credit, tmp_path_factory):
    profile = profile_dataframe(credit)
    encoded = encode_for_generation(credit, profile)
    params = {"n_iter": generators.epochs_for_steps("ddpm", 1500, len(encoded), 512), "batch_size": 512, "num_timesteps": 200}
    return credit, profile, fit_generator(encoded, "ddpm", params, seed=0, workspace=tmp_path_factory.mktemp("ddpm"))


def _distance(real: pd.DataFrame, synthetic: pd.DataFrame, profile) -> float:
    shapes = [metrics.ks_statistic(real[c].dropna(), synthetic[c].dropna()) for c in profile.by_kind("numeric")]
    shapes += [metrics.total_variation_distance(real[c], synthetic[c]) for c in profile.by_kind("categorical")]
    return float(np.mean(shapes))


def test_a_fifth_of_the_steps_keeps_the_quality_of_ancestral_sampling(ddpm):
    """Quality check: column-shape distance to the real rows, the respaced chain (40 of 200 timesteps) vs synthcity's
    ancestral sampler through all 200, same fitted model, 3,000 rows each."""
    real, profile, fitted = ddpm
    ancestral = decode_from_generation(sample(fitted, 3000, seed=1, sampling_steps=200), profile)
    strided = decode_from_generation(sample(fitted, 3000, seed=1, sampling_steps=40), profile)
    d_ancestral, d_strided = _distance(real, ancestral, profile), _distance(real, strided, profile)
    assert d_strided <= d_ancestral + 0.02, (d_strided, d_ancestral)
    assert d_strided < 0.15  # and both are real samples of credit_data, not noise


def test_chunked_generation_gives_the_exact_count_and_schema(ddpm):
    real, profile, fitted = ddpm
    chunks = list(iter_sample(fitted, 2501, seed=2, sampling_steps=20, chunk_rows=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 501]
    encoded_columns = list(encode_for_generation(real.head(5), profile).columns)
    assert all(list(c.columns) == encoded_columns for c in chunks)
    table = decode_from_generation(pd.concat(chunks, ignore_index=True), profile)
    assert len(table) == 2501 and list(table.columns) == list(real.columns)
    again = sample(fitted, 2501, seed=2, sampling_steps=20, chunk_rows=1000)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), again)  # seeded per chunk
    with pytest.raises(GenerationError, match="at least one"):
        sample(fitted, 0, seed=0)


def test_threads_follow_the_cores_and_the_workers_and_are_applied():
    import torch

    import synth_platform  # noqa: F401 - sets the OpenMP wait policy

    cores = generators.available_cores()
    assert generators.threads_for(1) == cores and generators.threads_for(cores * 4) == 1
    assert generators.threads_for(2, requested=3) == 3
    try:
        assert generators.configure_compute(1) == 1 and torch.get_num_threads() == 1
        assert generators.configure_compute(0, workers=cores) == 1
    finally:
        generators.configure_compute(2)
    with pytest.raises(GenerationError, match="0 \\(automatic\\) or positive"):
        generators.threads_for(1, requested=-1)
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_device_comes_from_config_and_a_missing_gpu_is_a_clear_error():
    import torch

    assert generators.resolve_device("cpu") == "cpu"
    assert generators.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(GenerationError, match="sees no GPU"):
            generators.resolve_device("cuda")
    with pytest.raises(GenerationError, match="Unknown device"):
        generators.resolve_device("tpu")
