"""optax 0.2.8's behaviour for the parameter-free and schedule-free optimizers of contrib.

Each override is one call of the gradtx definition with optax's arguments; the options it
passes reproduce where optax departs from the paper (see ``docs/guide/paramfree.md``).
"""

from __future__ import annotations

from gradtx.contrib import _dadapt, _mechanic, _prodigy, _schedule_free


def schedule_free_sgd(
    learning_rate=1.0,
    warmup_steps=None,
    b1=0.9,
    weight_decay=None,
    weight_lr_power=2.0,
    state_dtype=None,
):
    """optax.contrib.schedule_free_sgd: z steps with the previous step's warmup factor."""
    return _schedule_free.schedule_free_sgd(
        learning_rate,
        warmup_steps,
        b1,
        weight_decay,
        weight_lr_power,
        state_dtype,
        warmup_lag=True,
    )


def schedule_free_adamw(
    learning_rate=0.0025,
    warmup_steps=None,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    weight_lr_power=2.0,
    state_dtype=None,
):
    """optax.contrib.schedule_free_adamw: Adam's bias correction in v rather than in the step
    size, and z stepped with the previous step's warmup factor."""
    return _schedule_free.schedule_free_adamw(
        learning_rate,
        warmup_steps,
        b1,
        b2,
        eps,
        weight_decay,
        weight_lr_power,
        state_dtype,
        bias_correction="moment",
        warmup_lag=True,
    )


def prodigy(
    learning_rate=1.0,
    betas=(0.9, 0.999),
    beta3=None,
    eps=1e-8,
    estim_lr0=1e-6,
    estim_lr_coef=1.0,
    weight_decay=0.0,
    safeguard_warmup=False,
):
    """optax.contrib.prodigy: Adam's bias correction in the step, eps scaled by the new d."""
    return _prodigy.prodigy(
        learning_rate,
        betas,
        beta3,
        eps,
        estim_lr0,
        estim_lr_coef,
        weight_decay,
        safeguard_warmup,
        bias_correction=True,
        eps_with_new_estimate=True,
    )


def dadapt_adamw(learning_rate=1.0, betas=(0.9, 0.999), eps=1e-8, estim_lr0=1e-6, weight_decay=0.0):
    """optax.contrib.dadapt_adamw: Adam's bias correction in the step."""
    return _dadapt.dadapt_adamw(
        learning_rate, betas, eps, estim_lr0, weight_decay, bias_correction=True
    )


def mechanize(base_optimizer, weight_decay=0.01, eps=1e-8, s_init=1e-6, num_betas=6):
    """optax.contrib.mechanize: the steps recovered from the params divided by S + eps."""
    return _mechanic.mechanize(
        base_optimizer, weight_decay, eps, s_init, num_betas, eps_in_delta=True
    )


OVERRIDES = {
    "contrib": {
        "mechanize": mechanize,
        "dadapt_adamw": dadapt_adamw,
        "prodigy": prodigy,
        "schedule_free_sgd": schedule_free_sgd,
        "schedule_free_adamw": schedule_free_adamw,
    }
}
