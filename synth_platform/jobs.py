"""Jobs over the synthesis group."""

from __future__ import annotations

import dagster as dg

from synth_platform.assets import GROUP, tuned_hyperparameters

synthesis_job = dg.define_asset_job(
    "synthesis_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="The whole chain, from the source table to the privacy/utility report and its checks.",
)

resynthesis_job = dg.define_asset_job(
    "resynthesis_job",
    selection=dg.AssetSelection.assets(tuned_hyperparameters).downstream(),
    description="Re-tune, re-generate and re-evaluate on the last source sample and profile (used by the auto-optimizer).",
)
