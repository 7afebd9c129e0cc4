"""The trial setup a study writes for its workers (training rows inside) is sealed and owner-only: a worker refuses a
file it did not seal, before unpickling anything, so whoever can write to a shared volume cannot run code on the
workers."""

import os
import pickle
import stat

import pandas as pd
import pytest

from synth_platform.generation.generators import PrivacyPolicy
from synth_platform.profiling.profile import profile_dataframe
from synth_platform.sealed_storage import SealedStorageError
from synth_platform.tuning.study import PrivacyConstraints, SearchSettings, TrialSetup, TuningBudget


class _Payload:
    """What an attacker would drop on the volume: unpickling it creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _setup(tmp_path) -> TrialSetup:
    rows = pd.DataFrame({"age": range(30), "ward": ["a", "b", "c"] * 10})
    return TrialSetup("ddpm", rows, rows, rows, profile_dataframe(rows), [], TuningBudget(), SearchSettings(),
                      PrivacyPolicy(), PrivacyConstraints(), 0, tmp_path)


def test_the_setup_file_is_sealed_owner_only_and_round_trips(tmp_path):
    path = _setup(tmp_path).save(tmp_path / "trial_setup.pkl")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert b"ward" not in path.read_bytes()  # encrypted: no column name, no value readable
    assert TrialSetup.load(path).fit_rows.equals(_setup(tmp_path).fit_rows)


def test_a_file_the_platform_did_not_seal_is_refused_before_unpickling(tmp_path):
    marker = tmp_path / "code_ran"
    planted = tmp_path / "planted.pkl"
    planted.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(SealedStorageError, match="sealed with another storage key"):
        TrialSetup.load(planted)
    assert not marker.exists()
    genuine = _setup(tmp_path).save(tmp_path / "trial_setup.pkl")
    tampered = bytearray(genuine.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    genuine.write_bytes(bytes(tampered))
    with pytest.raises(SealedStorageError):
        TrialSetup.load(genuine)
