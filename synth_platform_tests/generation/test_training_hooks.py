import threading

import pandas as pd
import pytest

from synth_platform.generation import generators
from synth_platform.generation.training_hooks import EpochEnd
from synth_platform.profiling.profile import encode_for_generation, profile_dataframe


@pytest.fixture(scope="module")
def encoded(adult_small):
    frame = adult_small.head(400)
    return encode_for_generation(frame, profile_dataframe(frame))


PARAMS = {
    "tvae": {"n_iter": 4, "batch_size": 100, "decoder_n_layers_hidden": 2, "n_units_embedding": 32},
    "ctgan": {"n_iter": 4, "batch_size": 100, "generator_n_layers_hidden": 1, "discriminator_n_layers_hidden": 1},
}


@pytest.mark.parametrize("plugin", ["tvae", "ctgan"])
def test_every_epoch_calls_back_and_sampling_mid_training_leaves_the_fit_bit_identical(plugin, encoded, tmp_path):
    seen: list[EpochEnd] = []
    mid_training: list[pd.DataFrame] = []

    def on_epoch_end(progress: EpochEnd) -> None:
        seen.append(progress)
        mid_training.append(progress.sample(150, 7))

    sampled = generators.fit_generator(encoded, plugin, PARAMS[plugin], seed=1, workspace=tmp_path / "a", on_epoch_end=on_epoch_end)
    plain = generators.fit_generator(encoded, plugin, PARAMS[plugin], seed=1, workspace=tmp_path / "b")

    assert [p.epoch for p in seen] == [1, 2, 3, 4] and {p.n_epochs for p in seen} == {4}
    assert all(p.loss is None for p in seen)  # tvae's and ctgan's losses are not reported (not comparable)
    assert all(len(rows) == 150 and list(rows.columns) == list(encoded.columns) for rows in mid_training)
    assert not mid_training[0].equals(mid_training[-1])  # the model moved between epochs
    # Sampling (which re-seeds every random generator) changed nothing in the training itself.
    pd.testing.assert_frame_equal(generators.sample(sampled, 300, seed=2), generators.sample(plain, 300, seed=2))


def test_a_callback_that_raises_stops_the_fit_at_that_epoch(encoded, tmp_path):
    class Stop(Exception):
        pass

    epochs: list[int] = []

    def stop_after_two(progress: EpochEnd) -> None:
        epochs.append(progress.epoch)
        if progress.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        generators.fit_generator(encoded, "tvae", {**PARAMS["tvae"], "n_iter": 50}, seed=1, workspace=tmp_path,
                                 on_epoch_end=stop_after_two, passthrough=(Stop,))
    assert epochs == [1, 2]


def test_a_fit_in_another_thread_is_not_watched(encoded, tmp_path):
    """The hook belongs to the thread that asked for it: a concurrent fit elsewhere never calls it."""
    ours: list[int] = []
    other: list[int] = []
    errors: list[BaseException] = []

    def fit_in_thread() -> None:
        try:
            generators.fit_generator(encoded, "ctgan", PARAMS["ctgan"], seed=2, workspace=tmp_path / "thread")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def on_epoch_end(progress: EpochEnd) -> None:
        ours.append(progress.epoch)
        if progress.epoch == 1:
            thread = threading.Thread(target=fit_in_thread)
            thread.start()
            thread.join()
            other.append(len(ours))

    generators.fit_generator(encoded, "tvae", PARAMS["tvae"], seed=1, workspace=tmp_path / "main", on_epoch_end=on_epoch_end)
    assert not errors
    assert ours == [1, 2, 3, 4] and other == [1]  # the thread's 4 ctgan epochs were not counted here


def test_progress_is_logged_for_every_plugin(encoded, tmp_path):
    lines: list[str] = []
    generators.fit_generator(encoded, "ctgan", {**PARAMS["ctgan"], "n_iter": 10}, seed=1, workspace=tmp_path, log=lines.append)
    progress = [line for line in lines if line.startswith("ctgan: epoch ")]
    assert [line.split()[2].rstrip(",") for line in progress] == [f"{e}/10" for e in range(1, 10)]
    assert all("s left" in line for line in progress)
