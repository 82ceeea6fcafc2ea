"""torch.optim 2.13's optimizers as gradtx transformations: torch's names, arguments, defaults.

Each function takes torch's keyword arguments (``lr``, ``betas``, ``weight_decay``, ...) and
returns ONE call of a gradtx alias or a chain of gradtx transforms, with the options that give
torch's arithmetic (coupled L2 first in the chain, torch's eps placement, ...). There is no
second implementation here: the math is in the transforms named in each docstring.

``lr`` is a number or a gradtx schedule ``count -> value`` (``count`` is the number of
``update`` calls before this one, i.e. one torch ``scheduler.step()`` per ``optimizer.step()``).

The first positional argument is torch's ``params``: None (every parameter in one group) or a
list of parameter groups, each a dict whose ``"params"`` says by path which leaves belong to it
(see ``gradtx.compat.torch`` and ``docs/guide/torch.md``). torch's execution flags
(``foreach``, ``fused``, ``capturable``, ``differentiable``) are accepted and ignored: they
choose torch kernels, never the numbers.
"""

from __future__ import annotations

import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._aliases.adam_variants import adamax, nadam, radam
from gradtx._aliases.factored import adafactor
from gradtx._aliases.seed import adagrad, adam, adamw, rmsprop, sgd
from gradtx._aliases.zoo_misc import adadelta, asgd, rprop
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain, identity
from gradtx.compat.torch._groups import with_param_groups
from gradtx.contrib._muon import muon
from gradtx.transforms._decay import add_l2_penalty
from gradtx.transforms._lbfgs import scale_by_lbfgs
from gradtx.transforms._linesearch import scale_by_zoom_linesearch
from gradtx.transforms._scaling import scale_by_learning_rate

_TORCH_FLAGS = ("foreach", "fused", "capturable", "differentiable")


def _flags(where, flags):
    """Accept torch's kernel-choice flags (they never change the numbers); refuse the rest."""
    unknown = sorted(set(flags) - set(_TORCH_FLAGS))
    if unknown:
        raise TypeError(
            f"{where}: unexpected keyword argument(s) {unknown}. torch.optim's execution flags "
            f"{list(_TORCH_FLAGS)} are accepted (and ignored); check the spelling of the others."
        )


def _zero(x) -> bool:
    return _checks.is_python_number(x) and x == 0


def _l2(weight_decay):
    """torch's coupled weight decay ``grad = grad + weight_decay * param`` (none for 0)."""
    return identity() if _zero(weight_decay) else add_l2_penalty(weight_decay)


def _pair(where, name, value):
    if not (isinstance(value, tuple | list) and len(value) == 2):
        raise TypeError(f"{where}: {name}={value!r}; expected a pair (a, b), as torch.")
    return tuple(value)


def _number_lr(where, lr, why):
    if callable(lr):
        raise TypeError(
            f"{where}: lr={lr!r} is a schedule; this optimizer takes a number: {why} Pass a "
            "number (or build the gradtx transform yourself)."
        )


def _times(lr, factor):
    """lr * factor, for a number or a schedule lr."""
    if callable(lr):
        return lambda count: lr(count) * factor
    return lr * factor


def SGD(  # noqa: N802
    params=None,
    lr=1e-3,
    momentum=0.0,
    dampening=0.0,
    weight_decay=0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.SGD: chain(add_l2_penalty(weight_decay), sgd(lr, momentum, nesterov,
    dampening=dampening)).

    buf = g at the first step, then momentum * buf + (1 - dampening) * g;
    g = g + momentum * buf (nesterov) or buf;  param -= lr * g.  momentum=0 keeps no buffer.
    """
    where = "gradtx.compat.torch.SGD"
    _flags(where, flags)

    def build(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
              nesterov=nesterov, maximize=maximize):  # fmt: skip
        if nesterov and (_zero(momentum) or not _zero(dampening)):
            raise ValueError(
                f"{where}: nesterov=True needs momentum > 0 and dampening = 0 (as torch); got "
                f"momentum={momentum!r}, dampening={dampening!r}."
            )
        m = None if _zero(momentum) else momentum
        return maximizing(
            chain(_l2(weight_decay), sgd(lr, m, nesterov, dampening=dampening)), maximize
        )

    return with_param_groups(where, build, params)


def Adam(  # noqa: N802
    params=None,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.Adam: chain(add_l2_penalty(weight_decay), adam(lr, b1, b2, eps,
    amsgrad=amsgrad)); with decoupled_weight_decay=True, AdamW (see ``AdamW``).

    m_hat / (sqrt(v_hat) + eps), bias-corrected from step 1; amsgrad keeps the running
    maximum of the uncorrected v (``scale_by_amsgrad``).
    """
    where = "gradtx.compat.torch.Adam"
    _flags(where, flags)

    def build(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
              maximize=maximize, decoupled_weight_decay=decoupled_weight_decay):  # fmt: skip
        b1, b2 = _pair(where, "betas", betas)
        if decoupled_weight_decay:
            return adamw(lr, b1, b2, eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)  # fmt: skip
        return maximizing(
            chain(_l2(weight_decay), adam(lr, b1, b2, eps, amsgrad=amsgrad)), maximize
        )

    return with_param_groups(where, build, params)


def AdamW(  # noqa: N802
    params=None,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.AdamW: adamw(lr, b1, b2, eps, weight_decay=weight_decay, amsgrad=amsgrad).

    param -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * param), the decay taken from
    the parameters before the step, as torch's ``param.mul_(1 - lr * weight_decay)``.
    """
    where = "gradtx.compat.torch.AdamW"
    _flags(where, flags)

    def build(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
              maximize=maximize):  # fmt: skip
        b1, b2 = _pair(where, "betas", betas)
        return adamw(lr, b1, b2, eps, weight_decay=weight_decay, amsgrad=amsgrad,
                     maximize=maximize)  # fmt: skip

    return with_param_groups(where, build, params)


def Adagrad(  # noqa: N802
    params=None,
    lr=1e-2,
    lr_decay=0.0,
    weight_decay=0.0,
    initial_accumulator_value=0.0,
    eps=1e-10,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.Adagrad: chain(add_l2_penalty(weight_decay), adagrad(clr,
    initial_accumulator_value, eps)) with the schedule clr(count) = lr / (1 + count * lr_decay).

    sum += g * g;  param -= clr * g / (sqrt(sum) + eps).
    """
    where = "gradtx.compat.torch.Adagrad"
    _flags(where, flags)

    def build(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
              initial_accumulator_value=initial_accumulator_value, eps=eps,
              maximize=maximize):  # fmt: skip
        _checks.check_number(where, "lr_decay", lr_decay, low=0.0)
        clr = lr
        if not _zero(lr_decay):

            def clr(count):
                c = jnp.asarray(count).astype(jnp.result_type(float))
                base = lr(count) if callable(lr) else lr
                return base / (1 + c * lr_decay)

        return maximizing(
            chain(_l2(weight_decay), adagrad(clr, initial_accumulator_value, eps)), maximize
        )

    return with_param_groups(where, build, params)


def RMSprop(  # noqa: N802
    params=None,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.RMSprop: chain(add_l2_penalty(weight_decay), rmsprop(lr, decay=alpha, eps,
    centered=centered, momentum=momentum or None)).

    v = alpha * v + (1 - alpha) * g * g;  avg = sqrt(v - gbar * gbar) + eps (centered) or
    sqrt(v) + eps;  buf = momentum * buf + g / avg and param -= lr * buf (momentum > 0), else
    param -= lr * g / avg.
    """
    where = "gradtx.compat.torch.RMSprop"
    _flags(where, flags)

    def build(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
              centered=centered, maximize=maximize):  # fmt: skip
        m = None if _zero(momentum) else momentum
        return maximizing(
            chain(_l2(weight_decay), rmsprop(lr, alpha, eps, centered=centered, momentum=m)),
            maximize,
        )

    return with_param_groups(where, build, params)


def Adadelta(  # noqa: N802
    params=None,
    lr=1.0,
    rho=0.9,
    eps=1e-6,
    weight_decay=0.0,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.Adadelta: adadelta(lr, rho, eps, weight_decay) (decay added to g first).

    v = rho * v + (1 - rho) * g * g;  delta = sqrt(u + eps) / sqrt(v + eps) * g;
    u = rho * u + (1 - rho) * delta * delta;  param -= lr * delta.
    """
    where = "gradtx.compat.torch.Adadelta"
    _flags(where, flags)

    def build(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize):
        return adadelta(lr, rho, eps, weight_decay, maximize=maximize)

    return with_param_groups(where, build, params)


def Adamax(  # noqa: N802
    params=None,
    lr=2e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.Adamax: adamax(lr, b1, b2, eps, weight_decay) (coupled L2).

    m = b1 * m + (1 - b1) * g;  u = max(b2 * u, |g| + eps);  param -= lr / (1 - b1^t) * m / u.
    """
    where = "gradtx.compat.torch.Adamax"
    _flags(where, flags)

    def build(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize):
        b1, b2 = _pair(where, "betas", betas)
        wd = None if _zero(weight_decay) else weight_decay
        return adamax(lr, b1, b2, eps, wd, maximize=maximize)

    return with_param_groups(where, build, params)


def NAdam(  # noqa: N802
    params=None,
    lr=2e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.NAdam: nadam(lr, b1, b2, eps, weight_decay=..., momentum_decay=...,
    decoupled_weight_decay=...), Dozat's momentum schedule mu_t = b1 (1 - 0.5 0.96^(t psi))."""
    where = "gradtx.compat.torch.NAdam"
    _flags(where, flags)

    def build(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
              momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
              maximize=maximize):  # fmt: skip
        b1, b2 = _pair(where, "betas", betas)
        wd = None if _zero(weight_decay) else weight_decay
        return nadam(lr, b1, b2, eps, weight_decay=wd, momentum_decay=momentum_decay,
                     decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)  # fmt: skip

    return with_param_groups(where, build, params)


def RAdam(  # noqa: N802
    params=None,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.RAdam: radam(lr, b1, b2, eps, weight_decay=..., decoupled_weight_decay=...),
    the rectified step when rho_t > 5, else the bias-corrected momentum alone."""
    where = "gradtx.compat.torch.RAdam"
    _flags(where, flags)

    def build(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
              decoupled_weight_decay=decoupled_weight_decay, maximize=maximize):  # fmt: skip
        b1, b2 = _pair(where, "betas", betas)
        wd = None if _zero(weight_decay) else weight_decay
        return radam(lr, b1, b2, eps, weight_decay=wd,
                     decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)  # fmt: skip

    return with_param_groups(where, build, params)


def Rprop(  # noqa: N802
    params=None,
    lr=1e-2,
    etas=(0.5, 1.2),
    step_sizes=(1e-6, 50.0),
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.Rprop: rprop(lr, eta_minus, eta_plus, min_step, max_step) (iRprop-).

    ``lr`` is only the initial step size of every coordinate (torch reads it once, at the
    first step, so a scheduler has no effect there either): it must be a number.
    """
    where = "gradtx.compat.torch.Rprop"
    _flags(where, flags)

    def build(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize):
        _number_lr(where, lr, "Rprop's lr is the initial step size, read once.")
        eta_minus, eta_plus = _pair(where, "etas", etas)
        lo, hi = _pair(where, "step_sizes", step_sizes)
        return rprop(lr, eta_minus, eta_plus, lo, hi, maximize=maximize)

    return with_param_groups(where, build, params)


def ASGD(  # noqa: N802
    params=None,
    lr=1e-2,
    lambd=1e-4,
    alpha=0.75,
    t0=1e6,
    weight_decay=0.0,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.ASGD: asgd(lr, lambd, alpha, t0, weight_decay); the average is
    ``gradtx.tree_get(state, "ax")``.

    ``lr`` must be a number: torch folds the current lr into the next step's eta one step
    late, which ``scale_by_asgd`` does not model.
    """
    where = "gradtx.compat.torch.ASGD"
    _flags(where, flags)

    def build(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
              maximize=maximize):  # fmt: skip
        _number_lr(where, lr, "torch's ASGD feeds a changed lr into eta one step late.")
        return asgd(lr, lambd, alpha, t0, weight_decay, maximize=maximize)

    return with_param_groups(where, build, params)


def Adafactor(  # noqa: N802
    params=None,
    lr=1e-2,
    beta2_decay=-0.8,
    eps=(None, 1e-3),
    d=1.0,
    weight_decay=0.0,
    *,
    maximize: bool = False,
    **flags,
) -> GradientTransformation:
    """torch.optim.Adafactor: adafactor(lr, decay_rate=-beta2_decay, eps=eps[0],
    eps_scale=eps[1], clipping_threshold=d, weight_decay_rate=lr * weight_decay,
    eps_clamp=True) (no momentum, factored from the last two axes of every matrix).

    rho_t = min(lr, 1 / sqrt(t)); param -= max(eps[1], RMS(param)) * rho_t * U / max(1,
    RMS(U) / d) + lr * weight_decay * param.
    """
    where = "gradtx.compat.torch.Adafactor"
    _flags(where, flags)

    def build(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
              maximize=maximize):  # fmt: skip
        eps1, eps2 = _pair(where, "eps", eps)
        _checks.check_number(where, "beta2_decay", beta2_decay, high=0.0)
        wd = None if _zero(weight_decay) else _times(lr, weight_decay)
        return adafactor(lr, decay_rate=-beta2_decay, clipping_threshold=d, weight_decay_rate=wd,
                         eps=eps1, eps_scale=eps2, eps_clamp=True, maximize=maximize)  # fmt: skip

    return with_param_groups(where, build, params)


def Muon(  # noqa: N802
    params=None,
    lr=1e-3,
    weight_decay=0.1,
    momentum=0.95,
    nesterov: bool = True,
    ns_coefficients=(3.4445, -4.775, 2.0315),
    eps=1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    *,
    muon_weight_dimension_numbers=None,
) -> GradientTransformation:
    """torch.optim.Muon: gradtx.contrib.muon(lr, ns_coefficients, ns_steps, beta=momentum,
    eps, weight_decay, nesterov=nesterov, consistent_rms=0.2 for "match_rms_adamw").

    adjust_lr_fn None or "original": lr * sqrt(max(1, fan_out / fan_in)); "match_rms_adamw":
    lr * 0.2 * sqrt(max(fan_in, fan_out)). The matrices are read as (fan_in, fan_out) (a JAX
    kernel); a torch-layout (out, in) weight needs
    ``muon_weight_dimension_numbers=gradtx.contrib.MuonDimensionNumbers(1, 0)``. torch refuses
    non-matrix parameters; here they get gradtx.contrib.muon's AdamW fallback (no decay).
    """
    where = "gradtx.compat.torch.Muon"

    def build(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
              ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps,
              adjust_lr_fn=adjust_lr_fn):  # fmt: skip
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(
                f"{where}: adjust_lr_fn={adjust_lr_fn!r}; expected None, 'original' or "
                "'match_rms_adamw' (torch's)."
            )
        rms = 0.2 if adjust_lr_fn == "match_rms_adamw" else None
        return muon(lr, tuple(ns_coefficients), ns_steps, momentum, eps, weight_decay,
                    nesterov=nesterov, consistent_rms=rms,
                    muon_weight_dimension_numbers=muon_weight_dimension_numbers)  # fmt: skip

    return with_param_groups(where, build, params)


def LBFGS(  # noqa: N802
    params=None,
    lr=1.0,
    max_iter: int = 20,
    max_eval=None,
    tolerance_grad=1e-7,
    tolerance_change=1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> GradientTransformation:
    """torch.optim.LBFGS's iteration: chain(scale_by_lbfgs(history_size, first_step_norm="l1"),
    scale_by_learning_rate(lr), scale_by_zoom_linesearch if line_search_fn="strong_wolfe").

    ONE ``update`` is ONE of torch's inner iterations: torch's ``step(closure)`` runs up to
    ``max_iter`` of them; here the caller's loop does (``max_iter``, ``max_eval``,
    ``tolerance_grad`` and ``tolerance_change`` are the caller's stopping test, checked and
    otherwise unused). Without a line search the step is torch's exactly (first step
    lr * min(1, 1 / ||g||_1) * g, then lr * H g) while every curvature pair is kept (torch skips
    pairs with <s, y> <= 1e-10, gradtx those with <s, y> <= 0). "strong_wolfe" uses gradtx's
    zoom search (update then takes ``value``, ``grad`` and ``value_fn``), which reaches the
    same minimiser as torch's search along a different path. ``load_optimizer_state`` converts
    torch's LBFGS state (its ``old_dirs``, ``old_stps``, ``d``, ``t``, ``prev_flat_grad``).
    """
    where = "gradtx.compat.torch.LBFGS"
    if params is not None:
        raise ValueError(f"{where}: parameter groups are not supported (as torch: one group).")
    for name, value in (("max_iter", max_iter), ("history_size", history_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{where}: {name}={value!r}; expected a Python int >= 1.")
    _checks.check_number(where, "tolerance_grad", tolerance_grad, low=0.0)
    _checks.check_number(where, "tolerance_change", tolerance_change, low=0.0)
    if line_search_fn not in (None, "strong_wolfe"):
        raise ValueError(
            f"{where}: line_search_fn={line_search_fn!r}; expected None or 'strong_wolfe'."
        )
    search = (
        identity()
        if line_search_fn is None
        else scale_by_zoom_linesearch(max_linesearch_steps=25, initial_guess_strategy="one")
    )
    return chain(
        scale_by_lbfgs(history_size, first_step_norm="l1"),
        scale_by_learning_rate(lr),
        search,
    )
