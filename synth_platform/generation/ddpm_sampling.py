"""Fast sampling for synthcity's TabDDPM: a respaced chain through a subset of the trained diffusion timesteps, in
large batches, under `torch.inference_mode`. Pure logic: no Dagster here.

synthcity samples ancestrally through every one of the model's timesteps (1000 by default) in batches of 2,000
rows, so generating costs about twice the training. Here the chain jumps from timestep t to an earlier t' (evenly
spaced, `sampling_steps` of them) using the model's prediction of the clean sample: the numeric part by DDIM
(Song et al. 2021) with η = 1, which is the ancestral posterior of the respaced chain (Nichol & Dhariwal 2021), the
categorical part by the multinomial posterior of the jump (Hoogeboom et al. 2021) with the predicted classes plugged
in, as synthcity's own single step does. The model is the same fitted network; only the path through time changes.
`sampling_steps` equal to the model's timesteps runs synthcity's own ancestral sampler (the reference).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

class NonFiniteDraws(ValueError):
    """Sampled rows (in the model's space) with NaN or infinite values: `rows` of them, in `columns`."""

    def __init__(self, rows: int, total: int, columns: list[str]) -> None:
        self.rows, self.total, self.columns = rows, total, columns
        super().__init__(f"found NaNs or infinities in sample: {rows} of {total} rows, columns {columns[:10]}")

    def __reduce__(self):
        return (type(self), (self.rows, self.total, self.columns))


DEFAULT_BATCH_ROWS = 20_000  # rows denoised together: per-step Python overhead is paid once per batch
DEFAULT_ETA = 1.0  # numeric part: 1 is the respaced ancestral chain; 0, deterministic DDIM, measured worse


def strided_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """`steps` timesteps from T − 1 down to 0, evenly spaced (both ends included), descending, no repeats."""
    if steps < 1:
        raise ValueError(f"sampling steps must be at least 1, got {steps}.")
    steps = min(steps, num_timesteps)
    return sorted({int(round(t)) for t in np.linspace(0, num_timesteps - 1, steps)}, reverse=True)


def ddim_sample(diffusion: Any, num_samples: int, steps: int, eta: float = DEFAULT_ETA) -> Any:
    """`num_samples` rows in the diffusion's model space (numeric columns, then categorical class indices), as
    synthcity's `sample` returns them, through `steps` of the model's timesteps.

    Numeric part, DDIM with noise scale η: x' = √ᾱ' x̂₀ + √(1 − ᾱ' − σ²) ε̂ + σ z, σ = η √((1 − ᾱ')/(1 − ᾱ)) √(1 − ᾱ/ᾱ').
    η = 1 is the ancestral (DDPM) posterior of the respaced chain, η = 0 deterministic DDIM.
    Categorical part: the multinomial posterior of the jump with the predicted classes plugged in
    (`_multinomial_posterior`). Measured on credit_data (200-timestep model, 3,000 rows, two seeds), against
    synthcity's ancestral sampler through all 200 (numeric KS 0.089 / 0.076, categorical TVD 0.027 / 0.027): 100
    steps 0.081 / 0.084 and 0.027 / 0.025, 40 steps 0.082 / 0.087 and 0.032 / 0.031; η = 0 gave KS 0.15."""
    import torch
    from synthcity.plugins.core.models.tabular_ddpm.utils import ohe_to_categories

    device = diffusion.log_alpha.device
    alpha_bar = diffusion.alphas_cumprod.double().cpu()  # ᾱ_t, the cumulative product of the noise schedule
    n_numeric = int(diffusion.num_numerics)
    has_categories = diffusion.num_classes[0] != 0
    x = torch.randn((num_samples, n_numeric), device=device)
    log_z = torch.zeros((num_samples, 0), device=device)
    if has_categories:
        log_z = diffusion.log_sample_categorical(torch.zeros((num_samples, len(diffusion.num_classes_expanded)), device=device))
    times = strided_timesteps(int(diffusion.num_timesteps), steps)
    for index, step in enumerate(times):
        t = torch.full((num_samples,), step, device=device, dtype=torch.long)
        ab = float(alpha_bar[step])
        ab_prev = float(alpha_bar[times[index + 1]]) if index + 1 < len(times) else 1.0
        out = diffusion.denoise_fn(torch.cat([x, log_z], dim=1).float(), t, y=None)
        if n_numeric:
            predicted = diffusion.gaussian_p_mean_variance(out[:, :n_numeric], x, t, model_kwargs=None)["pred_xstart"]
            eps = diffusion._predict_eps_from_xstart(x, t, predicted)
            sigma = eta * ((1 - ab_prev) / (1 - ab)) ** 0.5 * (1 - ab / ab_prev) ** 0.5
            x = predicted * ab_prev ** 0.5 + max(0.0, 1.0 - ab_prev - sigma ** 2) ** 0.5 * eps
            if sigma > 0:
                x = x + sigma * torch.randn_like(x)
            x = x.float()
        if has_categories:
            log_p0 = diffusion.predict_start(out[:, n_numeric:], log_x_t=log_z)
            log_prob = _multinomial_posterior(diffusion, log_p0, log_z, ab / ab_prev, ab_prev)
            log_z = diffusion.log_sample_categorical(log_prob)  # Gumbel-max per column: normalising is not needed
    categories = ohe_to_categories(torch.exp(log_z).round(), diffusion.num_classes) if has_categories else log_z
    return torch.cat([x, categories.to(x.dtype)], dim=1).cpu()


def _multinomial_posterior(diffusion: Any, log_p0: Any, log_x_t: Any, alpha: float, ab_prev: float) -> Any:
    """Unnormalised log p(x' | x_t) of a jump from ᾱ to ᾱ' (step α = ᾱ/ᾱ') for every categorical column:
    log(ᾱ' p̂₀ + (1 − ᾱ')/K) + log(α x_t + (1 − α)/K), the multinomial posterior with the predicted class
    probabilities plugged in — synthcity's own single-step `q_posterior`, for any jump (one step: the same).

    The model is trained against this plug-in posterior. The exact mixture Σ_k p̂₀(k) q(x' | x_t, x₀ = k), tried
    first, doubled the categorical TVD on credit_data (0.057 against 0.027, even with 199 of 200 steps)."""
    import torch

    log_k = torch.log(diffusion.num_classes_expanded.to(log_p0.device)).float()
    towards_x0 = torch.logaddexp(np.log(ab_prev) + log_p0, np.log1p(-ab_prev) - log_k) if ab_prev < 1.0 else log_p0
    return towards_x0 + torch.logaddexp(np.log(alpha) + log_x_t, np.log1p(-alpha) - log_k)


@contextlib.contextmanager
def fast_sampling(plugin: Any, steps: int, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[None]:
    """While inside, `plugin.generate` (a fitted synthcity ddpm plugin) samples through `steps` of the model's
    timesteps (`ddim_sample`) in batches of `batch_rows`, under `torch.inference_mode`; synthcity's decoding around
    it is unchanged. `steps` ≥ the model's timesteps keeps synthcity's ancestral sampler (with the larger batches).
    A batch with NaN or infinite values raises `NonFiniteDraws` (generators.iter_sample recovers from it)."""
    import torch

    diffusion = plugin.model.diffusion
    ancestral = steps >= int(diffusion.num_timesteps)
    names = [str(c) for c in getattr(plugin.model, "feature_names_out", [])]

    def sample_all(num_samples: int, cond: Any = None, max_batch_size: int = batch_rows, ddim: bool = False) -> Any:
        if cond is not None:
            raise ValueError("conditional ddpm sampling is not supported by the fast sampler")
        chunks = []
        for start in range(0, num_samples, batch_rows):
            size = min(batch_rows, num_samples - start)
            with torch.inference_mode():
                chunk = diffusion.sample(size) if ancestral else ddim_sample(diffusion, size, steps)
            broken = ~torch.isfinite(chunk)
            if broken.any():  # checked before synthcity decodes them, which would hide where they came from
                bad_columns = broken.any(dim=0).nonzero().flatten().tolist()
                columns = [names[i] if len(names) == chunk.shape[1] else f"model column {i}" for i in bad_columns]
                raise NonFiniteDraws(int(broken.any(dim=1).sum()), size, columns)
            chunks.append(chunk)
        return torch.cat(chunks, dim=0)

    diffusion.sample_all = sample_all
    try:
        yield
    finally:
        del diffusion.sample_all  # the class's own method again
