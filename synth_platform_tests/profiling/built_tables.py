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


def mixed_source(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A table as a PostgreSQL sampler returns it, with what real tables hold and the profiler once failed on: a
    timestamptz column (tz-aware UTC datetimes), DATE columns as Python dates with the sentinels 9999-12-31 and
    0001-01-01 (outside datetime64[ns], so the column stays one of objects), `x` next to a column named
    `x__is_missing`, text holding '__missing__' next to NULLs, `Age` / `age` / `AGE`, floats with ±inf, 1e300 and
    NaN, booleans and NUMERIC values as Decimal."""
    import datetime as dt
    import decimal

    rng = np.random.default_rng(seed)
    admitted = [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, n)]
    stay = rng.gamma(2.0, 3.0, n).round().astype(int)
    discharged = [a + dt.timedelta(days=int(s)) for a, s in zip(admitted, stay)]
    still_in = rng.random(n) < 0.2  # open stays: discharged on 9999-12-31
    unknown = rng.random(n) < 0.05  # 0001-01-01: "unknown" in a legacy system
    discharged = [dt.date(9999, 12, 31) if s else (dt.date(1, 1, 1) if u else d) for d, s, u in zip(discharged, still_in, unknown)]
    x = rng.normal(50, 10, n).round(2)
    x[rng.random(n) < 0.1] = np.nan
    reading = rng.normal(0, 1, n)
    kind = rng.random(n)
    reading = np.where(kind < 0.06, np.inf, np.where(kind < 0.1, -np.inf, np.where(kind < 0.14, 1e300, reading)))
    reading[(kind >= 0.14) & (kind < 0.18)] = np.nan
    label = rng.choice(["red", "green", "__missing__"], n, p=[0.4, 0.4, 0.2]).astype(object)
    label[rng.random(n) < 0.15] = None
    return pd.DataFrame({
        "seen_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 200 * 86_400, n), unit="s"),
        "admitted": pd.Series(admitted, dtype=object),
        "discharged": pd.Series(discharged, dtype=object),
        "x": x,
        "x__is_missing": rng.integers(0, 4, n),
        "label": label,
        "Age": rng.integers(0, 10, n),
        "age": rng.integers(20, 40, n),
        "AGE": rng.choice(["p", "q", "r"], n),
        "reading": reading,
        "smoker": rng.choice([True, False], n, p=[0.3, 0.7]),
        "amount": [decimal.Decimal(f"{v:.2f}") for v in rng.uniform(1, 500, n)],
    })


def wide_independent(n: int = 500, columns: int = 300, seed: int = 0) -> pd.DataFrame:
    """Independent uniform numeric columns, each over its own random range (some disjoint, many overlapping)."""
    rng = np.random.default_rng(seed)
    frame = {}
    for i in range(columns):
        low, width = rng.uniform(-1_000, 1_000), rng.uniform(1, 500)
        frame[f"c{i:03d}"] = rng.uniform(low, low + width, n).round(3)
    return pd.DataFrame(frame)
