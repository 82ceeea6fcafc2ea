"""Parameter-free and schedule-free optimizers (gradtx.contrib) against NumPy float64 references.

Each reference is written from the paper's algorithm box (cited in its docstring), over the
whole tree at once (these methods use global inner products and norms), independently of
gradtx's code. Every case runs 25 steps on a nested tree of mixed shapes with a scalar leaf,
minimising a noisy quadratic whose gradient is taken where the method evaluates it (y for
the schedule-free methods), in float64 (1e-10 relative) and float32 (1e-5 relative to the
float64 reference); the update is jitted once per dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.contrib as gc

STEPS = 25
SHAPES = {"w": (3, 4), "b": (4,), "block": {"s": (), "k": (2, 3, 2)}}
_IS_SHAPE = lambda x: isinstance(x, tuple)  # noqa: E731


def _tree(rng, lead=(), fn=None):
    return jax.tree.map(lambda s: (fn or rng.standard_normal)(lead + s), SHAPES, is_leaf=_IS_SHAPE)


RNG = np.random.default_rng(0)
PARAMS0 = _tree(RNG)
CENTER = _tree(RNG)
CURV = _tree(RNG, fn=lambda s: RNG.uniform(0.5, 2.0, s))
NOISE = _tree(RNG, (STEPS,), fn=lambda s: 0.3 * RNG.standard_normal(s))
TREEDEF = jax.tree.structure(PARAMS0)


def _leaves(tree):
    return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


C_L, A_L, N_L = _leaves(CENTER), _leaves(CURV), _leaves(NOISE)


def grad_np(xs, t):
    """The gradient at step t (from 1) of the quadratic, leaf by leaf."""
    return [a * (x - c) + n[t - 1] for x, a, c, n in zip(xs, A_L, C_L, N_L)]


def loss_np(xs, t):
    return sum(
        np.sum(0.5 * a * (x - c) ** 2 + n[t - 1] * x) for x, a, c, n in zip(xs, A_L, C_L, N_L)
    )


def dot(a, b):
    return sum(np.sum(x * y) for x, y in zip(a, b))


def l1(a):
    return sum(np.sum(np.abs(x)) for x in a)


# ---- references: run(xs) -> {"params": [xs after each step], "eval": [...] (optional)} ----


def ref_schedule_free_adamw(lr, warmup, b1, b2, eps, wd):
    """Schedule-Free AdamW (Defazio et al. 2024, "The Road Less Scheduled", Algorithm 1):
    y = (1 - b1) z + b1 x; g = grad f(y); v = b2 v + (1 - b2) g^2;
    gamma_t = lr sqrt(1 - b2^t) min(1, t / T_warmup);
    z = z - gamma_t g / (sqrt(v) + eps) - gamma_t wd y;
    c = gamma_t^2 / sum_i gamma_i^2; x = (1 - c) x + c z. The params are y, evaluation at x."""

    def run(xs):
        x, z = [a.copy() for a in xs], [a.copy() for a in xs]
        v = [np.zeros_like(a) for a in xs]
        total, ys, evals = 0.0, [], []
        for t in range(1, STEPS + 1):
            y = [(1 - b1) * zi + b1 * xi for zi, xi in zip(z, x)]
            g = grad_np(y, t)
            v = [b2 * vi + (1 - b2) * gi**2 for vi, gi in zip(v, g)]
            gamma = lr * np.sqrt(1 - b2**t) * (min(1.0, t / warmup) if warmup else 1.0)
            z = [
                zi - gamma * gi / (np.sqrt(vi) + eps) - gamma * wd * yi
                for zi, gi, vi, yi in zip(z, g, v, y)
            ]
            total += gamma**2
            c = gamma**2 / total
            x = [(1 - c) * xi + c * zi for xi, zi in zip(x, z)]
            ys.append([(1 - b1) * zi + b1 * xi for zi, xi in zip(z, x)])
            evals.append(x)
        return {"params": ys, "eval": evals}

    return run


def ref_schedule_free_sgd(lr, warmup, b1, wd):
    """Schedule-Free SGD (Defazio et al. 2024, eqs. (1)-(3), weights as in Algorithm 1):
    y = (1 - b1) z + b1 x; z = z - gamma_t (grad f(y) + wd y), gamma_t = lr min(1, t / T_w);
    c = gamma_t^2 / sum_i gamma_i^2; x = (1 - c) x + c z."""

    def run(xs):
        x, z = [a.copy() for a in xs], [a.copy() for a in xs]
        total, ys, evals = 0.0, [], []
        for t in range(1, STEPS + 1):
            y = [(1 - b1) * zi + b1 * xi for zi, xi in zip(z, x)]
            g = grad_np(y, t)
            gamma = lr * (min(1.0, t / warmup) if warmup else 1.0)
            z = [zi - gamma * (gi + wd * yi) for zi, gi, yi in zip(z, g, y)]
            total += gamma**2
            c = gamma**2 / total
            x = [(1 - c) * xi + c * zi for xi, zi in zip(x, z)]
            ys.append([(1 - b1) * zi + b1 * xi for zi, xi in zip(z, x)])
            evals.append(x)
        return {"params": ys, "eval": evals}

    return run


def ref_prodigy(lr, b1, b2, b3, eps, d0, coef=1.0, wd=0.0, safeguard=False):
    """Prodigy, Adam version (Mishchenko & Defazio 2023, Algorithm 3), as printed:
    m = b1 m + (1 - b1) d g; v = b2 v + (1 - b2) d^2 g^2;
    r = b3 r + (1 - b3) gamma d^2 <g, x0 - x>; s = b3 s + (1 - b3) gamma d^2 g;
    d_new = max(d, coef r / |s|_1); x = x - gamma d (m / (sqrt(v) + d eps) + wd x).
    ``lr`` is gamma_k, a function of k from 0; safeguard_warmup drops gamma from s."""
    b3 = np.sqrt(b2) if b3 is None else b3

    def run(xs):
        x0, x = [a.copy() for a in xs], [a.copy() for a in xs]
        m, v, s = ([np.zeros_like(a) for a in xs] for _ in range(3))
        d, r, out = d0, 0.0, []
        for k in range(STEPS):
            g, gamma = grad_np(x, k + 1), lr(k)
            m = [b1 * mi + (1 - b1) * d * gi for mi, gi in zip(m, g)]
            v = [b2 * vi + (1 - b2) * d**2 * gi**2 for vi, gi in zip(v, g)]
            r = b3 * r + (1 - b3) * gamma * d**2 * dot(g, [a - b for a, b in zip(x0, x)])
            s_rate = (1 - b3) * (1.0 if safeguard else gamma) * d**2
            s = [b3 * si + s_rate * gi for si, gi in zip(s, g)]
            d_new = max(d, coef * r / l1(s))
            x = [
                xi - gamma * d * (mi / (np.sqrt(vi) + d * eps) + wd * xi)
                for xi, mi, vi in zip(x, m, v)
            ]
            d = d_new
            out.append(x)
        return {"params": out}

    return run


def ref_dadapt_adamw(lr, b1, b2, eps, d0, wd=0.0):
    """D-Adapt Adam (Defazio & Mishchenko 2023, "Learning-Rate-Free Learning by
    D-Adaptation", Algorithm 4), decoupled decay as in AdamW:
    m = b1 m + (1 - b1) d gamma g; v = b2 v + (1 - b2) g^2; x = x - m / (sqrt(v) + eps)
    - wd d gamma x; s = sqrt(b2) s + (1 - sqrt(b2)) d gamma g;
    r = sqrt(b2) r + (1 - sqrt(b2)) d gamma <g, s_old / (sqrt(v_old) + eps)>;
    d = max(d, r / ((1 - sqrt(b2)) |s|_1))."""
    sb2 = np.sqrt(b2)

    def run(xs):
        x = [a.copy() for a in xs]
        m, v, s = ([np.zeros_like(a) for a in xs] for _ in range(3))
        d, r, out = d0, 0.0, []
        for k in range(STEPS):
            g, dg = grad_np(x, k + 1), d * lr(k)
            r = sb2 * r + (1 - sb2) * dg * dot(
                g, [si / (np.sqrt(vi) + eps) for si, vi in zip(s, v)]
            )
            m = [b1 * mi + (1 - b1) * dg * gi for mi, gi in zip(m, g)]
            v = [b2 * vi + (1 - b2) * gi**2 for vi, gi in zip(v, g)]
            s = [sb2 * si + (1 - sb2) * dg * gi for si, gi in zip(s, g)]
            x = [xi - mi / (np.sqrt(vi) + eps) - wd * dg * xi for xi, mi, vi in zip(x, m, v)]
            d = max(d, r / ((1 - sb2) * l1(s)))
            out.append(x)
        return {"params": out}

    return run


def ref_dog(r_eps, eps, lr=1.0, wd=0.0, first=None):
    """DoG (Ivgi et al. 2023, Algorithm 1): rbar_t = max(r_eps, max_(i<=t) ||x_i - x0||);
    eta_t = rbar_t / sqrt(sum_(i<=t) ||g_i||^2 + eps) (eps under the root, as in the authors'
    code); x = x - lr eta_t g, g including wd x. r_eps is a number or "heuristic:a" for
    a (1 + ||x0||) (Section 3.3); ``first`` is eta_0 for the init_step "learning_rate"."""

    def run(xs):
        x0, x = [a.copy() for a in xs], [a.copy() for a in xs]
        norm0 = np.sqrt(dot(xs, xs))
        rbar = r_eps if not isinstance(r_eps, str) else float(r_eps[10:]) * (1 + norm0)
        total, out = 0.0, []
        for t in range(STEPS):
            g = [gi + wd * xi for gi, xi in zip(grad_np(x, t + 1), x)]
            diff = [a - b for a, b in zip(x, x0)]
            rbar = max(rbar, np.sqrt(dot(diff, diff)))
            total += dot(g, g)
            eta = first if (first is not None and t == 0) else rbar / np.sqrt(total + eps)
            x = [xi - lr * eta * gi for xi, gi in zip(x, g)]
            out.append(x)
        return {"params": out}

    return run


def ref_dowg(r2_eps, eps, lr=1.0, wd=0.0):
    """DoWG (Khaled et al. 2023, Algorithm 1): rbar_t^2 = max(rbar_(t-1)^2, ||x_t - x0||^2),
    from r_eps^2; v_t = v_(t-1) + rbar_t^2 ||g_t||^2; eta_t = rbar_t^2 / (sqrt(v_t) + eps);
    x = x - lr eta_t g, g including wd x."""

    def run(xs):
        x0, x = [a.copy() for a in xs], [a.copy() for a in xs]
        rbar2, v, out = r2_eps, 0.0, []
        for t in range(STEPS):
            g = [gi + wd * xi for gi, xi in zip(grad_np(x, t + 1), x)]
            diff = [a - b for a, b in zip(x, x0)]
            rbar2 = max(rbar2, dot(diff, diff))
            v += rbar2 * dot(g, g)
            x = [xi - lr * rbar2 / (np.sqrt(v) + eps) * gi for xi, gi in zip(x, g)]
            out.append(x)
        return {"params": out}

    return run


def ref_cocob(alpha, eps, lr=1.0, wd=0.0):
    """COCOB-Backprop (Orabona & Tommasi 2017, Algorithm 2), per coordinate, on the gradient
    g = lr (grad + wd w): L = max(L, |g|) from L_0 = eps; G = G + |g|;
    Reward = max(Reward - g (w - w1), 0); theta = theta - g;
    w = w1 + theta / (L max(G + L, alpha L)) (L + Reward)."""

    def run(xs):
        w1, w = [a.copy() for a in xs], [a.copy() for a in xs]
        big_l = [np.full_like(a, eps) for a in xs]
        big_g, reward, theta = ([np.zeros_like(a) for a in xs] for _ in range(3))
        out = []
        for t in range(STEPS):
            g = [lr * (gi + wd * wi) for gi, wi in zip(grad_np(w, t + 1), w)]
            big_l = [np.maximum(li, np.abs(gi)) for li, gi in zip(big_l, g)]
            big_g = [bi + np.abs(gi) for bi, gi in zip(big_g, g)]
            reward = [
                np.maximum(ri - gi * (wi - w1i), 0) for ri, gi, wi, w1i in zip(reward, g, w, w1)
            ]
            theta = [ti - gi for ti, gi in zip(theta, g)]
            w = [
                w1i + ti / (li * np.maximum(bi + li, alpha * li)) * (li + ri)
                for w1i, ti, li, bi, ri in zip(w1, theta, big_l, big_g, reward)
            ]
            out.append(w)
        return {"params": out}

    return run


def ref_mechanic(base_lr, lam, eps, s_init, n):
    """Mechanic (Cutkosky et al. 2023, Algorithm 1) over SGD (u = -base_lr g), with the
    base steps Delta kept explicitly: S = sum(s); g' = g + lam S ||g|| / (||x|| + eps) x;
    h = <g', Delta>; m = max(beta m, |h| + eps); v = beta^2 v + h^2;
    r = beta r - s clip(h, -m_old, m_old); W = s_init / n m + max(r, 0);
    s = W / (sqrt(v) + eps); Delta = Delta + u; x = x_ref + sum(s) Delta;
    beta_i = 1 - 0.1^i."""
    betas = 1 - 0.1 ** np.arange(1, n + 1)

    def run(xs):
        x_ref, x = [a.copy() for a in xs], [a.copy() for a in xs]
        delta = [np.zeros_like(a) for a in xs]
        s, m, v, r = np.full(n, s_init), np.zeros(n), np.zeros(n), np.zeros(n)
        out = []
        for t in range(STEPS):
            g = grad_np(x, t + 1)
            big_s = s.sum()
            coef = lam * big_s * np.sqrt(dot(g, g)) / (np.sqrt(dot(x, x)) + eps)
            h = dot([gi + coef * xi for gi, xi in zip(g, x)], delta)
            clipped = np.clip(h, -m, m)
            m = np.maximum(betas * m, abs(h) + eps)
            v = betas**2 * v + h**2
            r = betas * r - s * clipped
            s = (s_init / n * m + np.maximum(r, 0)) / (np.sqrt(v) + eps)
            delta = [di - base_lr * gi for di, gi in zip(delta, g)]
            x = [xr + s.sum() * di for xr, di in zip(x_ref, delta)]
            out.append(x)
        return {"params": out}

    return run


def ref_momo(lr, beta, lower, wd, adapt=False):
    """MoMo (Schaipp et al. 2023, Algorithm 1; beta = 0 at the first step):
    fbar = beta fbar + (1 - beta) f(x); d = beta d + (1 - beta) g;
    gamma = beta gamma + (1 - beta) <g, x>;
    tau = min(alpha, [(1 + alpha wd)(fbar - lb - gamma) + <d, x>]_+ / ||d||^2);
    x = x / (1 + alpha wd) - tau d. MoMo* (adapt): lb first lowered to
    max(cap / (2 (1 + alpha wd)), lower) when cap = (1 + alpha wd)(fbar - gamma) + <d, x> is below
    (1 + alpha wd) lb, then set to max(fbar + <d, x> - gamma - tau ||d||^2 / 2, lower)."""

    def run(xs):
        x, d = [a.copy() for a in xs], [np.zeros_like(a) for a in xs]
        fbar, gamma, lb, out = 0.0, 0.0, lower, []
        for k in range(STEPS):
            f, g, b = loss_np(x, k + 1), grad_np(x, k + 1), (0.0 if k == 0 else beta)
            fbar = b * fbar + (1 - b) * f
            d = [b * di + (1 - b) * gi for di, gi in zip(d, g)]
            gamma = b * gamma + (1 - b) * dot(g, x)
            q, ip, nd = 1 + lr * wd, dot(d, x), dot(d, d)
            if adapt:
                cap = q * (fbar - gamma) + ip
                lb = max(cap / (2 * q), lower) if cap < q * lb else lb
            tau = min(lr, max(q * (fbar - lb - gamma) + ip, 0.0) / nd)
            x = [xi / q - tau * di for xi, di in zip(x, d)]
            if adapt:
                lb = max(fbar + ip - gamma - tau * nd / 2, lower)
            out.append(x)
        return {"params": out}

    return run


def ref_momo_adam(lr, b1, b2, eps, lb, wd):
    """MoMo-Adam (Schaipp et al. 2023, Algorithm 2): fbar, d, gamma averaged with b1,
    v = b2 v + (1 - b2) g^2; D = eps + sqrt(v / (1 - b2^t)); bc1 = 1 - b1^t;
    tau = min(alpha / bc1, [(1 + alpha wd)(fbar - bc1 lb - gamma) + <d, x>]_+ / <d, d / D>);
    x = x / (1 + alpha wd) - tau d / D."""

    def run(xs):
        x = [a.copy() for a in xs]
        d, v = [np.zeros_like(a) for a in xs], [np.zeros_like(a) for a in xs]
        fbar, gamma, out = 0.0, 0.0, []
        for t in range(1, STEPS + 1):
            f, g = loss_np(x, t), grad_np(x, t)
            fbar = b1 * fbar + (1 - b1) * f
            d = [b1 * di + (1 - b1) * gi for di, gi in zip(d, g)]
            v = [b2 * vi + (1 - b2) * gi**2 for vi, gi in zip(v, g)]
            big_d = [eps + np.sqrt(vi / (1 - b2**t)) for vi in v]
            gamma = b1 * gamma + (1 - b1) * dot(g, x)
            bc1, q = 1 - b1**t, 1 + lr * wd
            nd = dot(d, [di / Di for di, Di in zip(d, big_d)])
            tau = min(lr / bc1, max(q * (fbar - bc1 * lb - gamma) + dot(d, x), 0.0) / nd)
            x = [xi / q - tau * di / Di for xi, di, Di in zip(x, d, big_d)]
            out.append(x)
        return {"params": out}

    return run


def _const(lr):
    return lambda k: lr


def _decay(k):
    """A decaying learning-rate schedule of the 0-based step k (a Python int or a jax int)."""
    if not isinstance(k, int):
        k = k.astype(jnp.result_type(float))
    return 1.0 / (1.0 + 0.1 * k)


CASES = {
    "schedule_free_adamw": (
        lambda: gc.schedule_free_adamw(0.1),
        ref_schedule_free_adamw(0.1, None, 0.9, 0.999, 1e-8, 0.0),
    ),
    "schedule_free_adamw[warmup,wd]": (
        lambda: gc.schedule_free_adamw(0.2, 5, 0.8, 0.99, 1e-3, 0.05),
        ref_schedule_free_adamw(0.2, 5, 0.8, 0.99, 1e-3, 0.05),
    ),
    "schedule_free_sgd": (
        lambda: gc.schedule_free_sgd(0.2),
        ref_schedule_free_sgd(0.2, None, 0.9, 0.0),
    ),
    "schedule_free_sgd[warmup,wd]": (
        lambda: gc.schedule_free_sgd(0.3, warmup_steps=4, b1=0.7, weight_decay=0.1),
        ref_schedule_free_sgd(0.3, 4, 0.7, 0.1),
    ),
    "schedule_free[sgd]": (
        lambda: gc.schedule_free(gradtx.sgd(0.2), 0.2, b1=0.5),
        ref_schedule_free_sgd(0.2, None, 0.5, 0.0),
    ),
    "prodigy": (
        lambda: gc.prodigy(estim_lr0=1e-3),
        ref_prodigy(_const(1.0), 0.9, 0.999, None, 1e-8, 1e-3),
    ),
    "prodigy[defaults]": (
        lambda: gc.prodigy(),
        ref_prodigy(_const(1.0), 0.9, 0.999, None, 1e-8, 1e-6),
    ),
    "prodigy[schedule,wd,coef]": (
        lambda: gc.prodigy(_decay, (0.8, 0.99), 0.95, 1e-4, 1e-2, 0.5, 0.05),
        ref_prodigy(_decay, 0.8, 0.99, 0.95, 1e-4, 1e-2, 0.5, 0.05),
    ),
    "prodigy[safeguard]": (
        lambda: gc.prodigy(_decay, estim_lr0=1e-3, safeguard_warmup=True),
        ref_prodigy(_decay, 0.9, 0.999, None, 1e-8, 1e-3, safeguard=True),
    ),
    "dadapt_adamw": (
        lambda: gc.dadapt_adamw(estim_lr0=1e-3),
        ref_dadapt_adamw(_const(1.0), 0.9, 0.999, 1e-8, 1e-3),
    ),
    "dadapt_adamw[schedule,wd]": (
        lambda: gc.dadapt_adamw(_decay, (0.8, 0.99), 1e-4, 1e-2, 0.05),
        ref_dadapt_adamw(_decay, 0.8, 0.99, 1e-4, 1e-2, 0.05),
    ),
    "dog": (lambda: gc.dog(), ref_dog("heuristic:1e-6", 1e-8)),
    "dog[distance,wd,lr]": (
        lambda: gc.dog(0.5, ("distance", 1e-2), 1e-6, 0.05),
        ref_dog(1e-2, 1e-6, lr=0.5, wd=0.05),
    ),
    "scale_by_dog[learning_rate]": (
        lambda: gradtx.chain(gc.scale_by_dog(("learning_rate", 0.05)), gradtx.scale(-1.0)),
        ref_dog(0.0, 1e-8, first=0.05),
    ),
    "dowg": (lambda: gc.dowg(), ref_dowg(1e-4, 1e-4)),
    "dowg[init,wd,lr]": (
        lambda: gc.dowg(0.5, 1e-2, 1e-6, 0.05),
        ref_dowg(1e-2, 1e-6, lr=0.5, wd=0.05),
    ),
    "scale_by_cocob": (
        lambda: gradtx.chain(gc.scale_by_cocob(), gradtx.identity()),
        ref_cocob(100.0, 1e-8),
    ),
    "cocob[lr,wd,alpha]": (
        lambda: gc.cocob(0.5, 10.0, 1e-4, 0.05),
        ref_cocob(10.0, 1e-4, lr=0.5, wd=0.05),
    ),
    "mechanize[sgd]": (
        lambda: gc.mechanize(gradtx.sgd(0.1)),
        ref_mechanic(0.1, 0.01, 1e-8, 1e-6, 6),
    ),
    "mechanize[sgd,options]": (
        lambda: gc.mechanize(gradtx.sgd(0.3), 0.1, 1e-6, 1e-3, 3),
        ref_mechanic(0.3, 0.1, 1e-6, 1e-3, 3),
    ),
    "momo": (lambda: gc.momo(0.5), ref_momo(0.5, 0.9, 0.0, 0.0)),
    "momo[lb,wd]": (lambda: gc.momo(1.0, 0.8, -2.0, 0.05), ref_momo(1.0, 0.8, -2.0, 0.05)),
    "momo[adapt]": (
        lambda: gc.momo(0.5, 0.9, -5.0, 0.01, adapt_lower_bound=True),
        ref_momo(0.5, 0.9, -5.0, 0.01, adapt=True),
    ),
    "momo_adam": (lambda: gc.momo_adam(0.1), ref_momo_adam(0.1, 0.9, 0.999, 1e-8, 0.0, 0.0)),
    "momo_adam[lb,wd]": (
        lambda: gc.momo_adam(0.2, 0.8, 0.99, 1e-4, -2.0, 0.05),
        ref_momo_adam(0.2, 0.8, 0.99, 1e-4, -2.0, 0.05),
    ),
}


# In float32, x0 - x after steps of size d0 = 1e-6 on parameters of order 1 keeps only one or
# two digits (float32's spacing near 1 is 1.2e-7), so <g, x0 - x> and with it d drift by
# ~1e-3 from the float64 values: a property of float32 parameters, checked in float64 only.
# mechanize recovers the sum of the base steps as (x - x0) / S, which in float32 parameters
# carries the same loss while S is of order num_betas * s_init = 6e-6.
FLOAT64_ONLY = {"prodigy[defaults]", "mechanize[sgd]"}


def _reference(run, params0):
    out = run(_leaves(params0))
    return {
        k: [np.stack([step[i] for step in v]) for i in range(len(v[0]))] for k, v in out.items()
    }


def _loss_and_grad(dtype):
    center, curv = (jax.tree.map(lambda x: jnp.asarray(x, dtype), t) for t in (CENTER, CURV))
    noise = jax.tree.map(lambda x: jnp.asarray(x, dtype), NOISE)

    def loss(p, t):
        terms = jax.tree.map(
            lambda x, a, c, n: jnp.sum(0.5 * a * (x - c) ** 2 + n[t - 1] * x),
            p,
            curv,
            center,
            noise,
        )
        return sum(jax.tree.leaves(terms))

    return jax.jit(jax.value_and_grad(loss))


def _gradtx(build, dtype, *, with_value=False):
    tx = build()
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), PARAMS0)
    step, value_and_grad = jax.jit(tx.update), _loss_and_grad(dtype)
    state, out = tx.init(params), {"params": [], "eval": []}
    for t in range(1, STEPS + 1):
        value, g = value_and_grad(params, t)
        extra = {"value": value} if with_value else {}
        updates, state = step(g, state, params, **extra)
        params = gradtx.apply_updates(params, updates)
        out["params"].append(_leaves(params))
        if isinstance(state, gc.ScheduleFreeState):
            out["eval"].append(_leaves(gc.schedule_free_eval_params(state, params)))
    return {k: [np.stack([s[i] for s in v]) for i in range(len(v[0]))] for k, v in out.items() if v}


def _worst(got, want):
    """The largest error of any step, relative to the largest reference value of its leaf."""
    errs = [
        np.max(np.abs(a - b).reshape(STEPS, -1).max(1) / np.abs(b).max())
        for key in want
        for a, b in zip(got[key], want[key])
    ]
    return max(errs)


ERRORS: dict[str, float] = {}


@pytest.mark.parametrize("name", list(CASES))
def test_trajectory_matches_the_papers_algorithm(name):
    build, run = CASES[name]
    with_value = name.startswith("momo")
    want64 = _reference(run, PARAMS0)
    with jax.enable_x64(True):
        err64 = _worst(_gradtx(build, jnp.float64, with_value=with_value), want64)
    ERRORS[name] = err64
    print(f"{name}: float64 relative error {err64:.2e}")
    assert err64 < 1e-10, f"{name}: float64 relative error {err64:.2e}"
    if name in FLOAT64_ONLY:
        return
    p32 = jax.tree.map(lambda x: np.asarray(x, np.float32).astype(np.float64), PARAMS0)
    err32 = _worst(_gradtx(build, jnp.float32, with_value=with_value), _reference(run, p32))
    assert err32 < 1e-5, f"{name}: float32 relative error {err32:.2e}"


def test_mechanize_keeps_bfloat16_params_and_float32_betting_state():
    """bf16 params give bf16 updates and a bf16 x0; the num_betas scalars stay float32."""
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), PARAMS0)
    tx = gc.mechanize(gradtx.adam(0.01))
    state = tx.init(params)
    grads = jax.tree.map(lambda x: jnp.asarray(x[0], jnp.bfloat16), NOISE)
    updates, state = jax.jit(tx.update)(grads, state, params)
    assert {x.dtype for x in jax.tree.leaves((updates, state.x0))} == {jnp.dtype(jnp.bfloat16)}
    assert {x.dtype for x in (state.r, state.m, state.v, state.s)} == {jnp.dtype(jnp.float32)}
    assert all(bool(jnp.all(jnp.isfinite(x.astype(jnp.float32)))) for x in jax.tree.leaves(updates))


def test_abstract_init_and_missing_loss():
    """Every optimizer here initialises under jax.eval_shape (no concrete params needed), and
    momo names value= when the loss is missing."""
    for build in (
        lambda: gc.schedule_free_adamw(),
        lambda: gc.prodigy(),
        lambda: gc.dadapt_adamw(),
        lambda: gc.dog(),
        lambda: gc.dowg(),
        lambda: gc.cocob(),
        lambda: gc.mechanize(gradtx.sgd(0.1)),
        lambda: gc.momo(),
        lambda: gc.momo_adam(),
    ):
        tx = build()
        params = jax.tree.map(jnp.asarray, PARAMS0)
        abstract = jax.eval_shape(tx.init, params)
        concrete = tx.init(params)
        assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
    with pytest.raises(ValueError, match="value="):
        tx = gc.momo()
        tx.update(params, tx.init(params), params)


def test_eval_params_match_optax():
    """The dialect's schedule_free_adamw and schedule_free_eval_params give optax's x."""
    optax = pytest.importorskip("optax")
    import gradtx.compat.optax as dialect

    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        params = jax.tree.map(jnp.asarray, PARAMS0)
        value_and_grad = _loss_and_grad(jnp.float64)
        xs = []
        for lib in (optax, dialect):
            tx, p = lib.contrib.schedule_free_adamw(0.05, weight_decay=0.01), params
            state = tx.init(p)
            for t in range(1, 11):
                updates, state = tx.update(value_and_grad(p, t)[1], state, p)
                p = lib.apply_updates(p, updates)
            xs.append(_leaves(lib.contrib.schedule_free_eval_params(state, p)))
        for a, b in zip(*xs):
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
