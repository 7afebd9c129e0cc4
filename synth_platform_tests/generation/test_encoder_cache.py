"""Reusing synthcity's fitted tabular encoder: identical encodings and identical generators, one fit for many,
persisted across processes, and a fresh fit whenever the data or the settings change."""

import pandas as pd
import pytest

from synth_platform.generation.encoder_cache import EncoderCache, reuse_tabular_encoders
from synth_platform.generation.generators import fit_generator, sample
from synth_platform.profiling.profile import encode_for_generation, profile_dataframe


@pytest.fixture(scope="module")
def frame(adult_small):
    profile = profile_dataframe(adult_small.head(400))
    return encode_for_generation(adult_small.head(400), profile)


def _fresh_encoder(frame, **settings):
    from synthcity.plugins.core.dataloader import GenericDataLoader
    from synthcity.plugins.core.models.tabular_encoder import TabularEncoder

    encoded, _ = GenericDataLoader(frame).encode()  # what synthcity's plugins hand to their encoder
    return encoded.dataframe(), TabularEncoder(**settings).fit(encoded.dataframe())


def test_a_cached_encoder_encodes_exactly_like_a_fresh_one(frame, tmp_path):
    data, fresh = _fresh_encoder(frame, max_clusters=10)
    cache = EncoderCache(tmp_path)
    cached = cache.get(data, {"max_clusters": 10}, lambda: _fresh_encoder(frame, max_clusters=10)[1])
    pd.testing.assert_frame_equal(cached.transform(data), fresh.transform(data))
    again = EncoderCache(tmp_path).get(data, {"max_clusters": 10}, lambda: pytest.fail("should come from disk"))
    pd.testing.assert_frame_equal(again.transform(data), fresh.transform(data))


def test_two_fits_share_one_encoder_and_give_the_same_generator_as_without_the_cache(frame, tmp_path):
    cache = EncoderCache(tmp_path / "encoders")
    params = {"n_iter": 2, "batch_size": 200}
    plain = fit_generator(frame, "tvae", params, seed=3, workspace=tmp_path / "a")
    first = fit_generator(frame, "tvae", params, seed=3, workspace=tmp_path / "b", encoder_cache=cache)
    second = fit_generator(frame, "ctgan", {"n_iter": 1, "batch_size": 200}, seed=3, workspace=tmp_path / "c", encoder_cache=cache)
    assert (cache.fits, cache.hits) == (1, 1)  # ctgan's default encoder settings equal tvae's: one fit for both
    assert second.model.fitted
    pd.testing.assert_frame_equal(sample(plain, 50, seed=1), sample(first, 50, seed=1))  # same generator
    assert len(list((tmp_path / "encoders").glob("tabular_encoder_*.pkl"))) == 1


def test_changed_data_or_settings_fit_a_new_encoder(frame, tmp_path):
    cache = EncoderCache(tmp_path)
    fit_generator(frame, "tvae", {"n_iter": 1}, seed=0, workspace=tmp_path / "w", encoder_cache=cache)
    fit_generator(frame.iloc[:-1], "tvae", {"n_iter": 1}, seed=0, workspace=tmp_path / "w", encoder_cache=cache)
    changed = frame.assign(age=frame["age"] + 1)
    fit_generator(changed, "tvae", {"n_iter": 1}, seed=0, workspace=tmp_path / "w", encoder_cache=cache)
    fit_generator(frame, "tvae", {"n_iter": 1, "data_encoder_max_clusters": 5}, seed=0, workspace=tmp_path / "w", encoder_cache=cache)
    assert (cache.fits, cache.hits) == (4, 0)
    fit_generator(frame, "tvae", {"n_iter": 1}, seed=0, workspace=tmp_path / "w", encoder_cache=cache)
    assert (cache.fits, cache.hits) == (4, 1)


def test_without_a_cache_synthcity_is_untouched(frame):
    import synthcity.plugins.core.models.tabular_vae as tabular_vae
    from synthcity.plugins.core.models.tabular_encoder import TabularEncoder

    with reuse_tabular_encoders(None):
        assert tabular_vae.TabularEncoder is TabularEncoder
    with reuse_tabular_encoders(EncoderCache()):
        assert tabular_vae.TabularEncoder is not TabularEncoder
    assert tabular_vae.TabularEncoder is TabularEncoder  # restored
