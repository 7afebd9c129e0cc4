"""Built tables with what the bundled datasets lack: identifiers, e-mails, phone numbers, names, free text,
datetimes and a start/end pair. Deterministic (seeded)."""

import numpy as np
import pandas as pd


def patients(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    admitted = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    stay = rng.gamma(2.0, 3.0, n).round().astype(int)  # days in hospital, 0 for same-day discharge
    age = rng.integers(18, 95, n)
    weight = rng.normal(60, 8, n) + 0.2 * age
    return pd.DataFrame({
        "patient_id": rng.permutation(np.arange(100_000, 100_000 + 3 * n))[:n],
        "sequence": np.arange(1, n + 1),
        "mrn": [f"MRN{x:07d}" for x in rng.integers(0, 10**7, n)],
        "email": [f"patient.{i}@hospital.example.org" for i in range(n)],
        "phone": [f"+44 20 7946 {i:04d}" for i in range(n)],
        "full_name": [f"Given{i} Family{i % 97}" for i in range(n)],
        "admitted": admitted.strftime("%Y-%m-%d"),
        "discharged": (admitted + pd.to_timedelta(stay, unit="D")).strftime("%Y-%m-%d"),
        "seen_at": (admitted + pd.to_timedelta(rng.integers(8 * 60, 18 * 60, n), unit="min")).strftime("%Y-%m-%d %H:%M:%S"),
        "notes": [f"patient {i} reported {w} pain after the procedure" for i, w in enumerate(rng.choice(["mild", "severe", "no"], n))],
        "diagnosis": rng.choice(["I10", "E11", "J45", "K35"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "smoker": rng.choice(["yes", "no"], n, p=[0.25, 0.75]),
        "age": age,
        "zip_code": rng.choice(["10115", "10117", "20095", "80331"], n),
        "weight": np.where(rng.random(n) < 0.15, np.nan, weight.round(1)),
    })
