"""gradtx.losses against NumPy float64 references written from each loss's definition.

Every reference below is computed in NumPy from the paper or textbook formula named in its
docstring, never from gradtx. Inputs are random and include the edges: logits of +-1e4,
probabilities of exactly 0 and 1, masks that select nothing. Values agree to 1e-10 (relative,
float64); gradients are checked with ``jax.test_util.check_grads`` in float64 and are finite at
the edges; bfloat16/float16 inputs give the float64 value rounded once. The last tests compare
the optax dialect with optax itself (skipped without optax).
"""

from __future__ import annotations

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import gradtx
import gradtx.losses as L

RTOL = 1e-10
RNG = np.random.default_rng(20260)
B, K = 6, 5


def close(got, want, rtol=RTOL, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- NumPy references


def np_log_softmax(x, axis=-1, mask=None):
    """log(exp(x_i) / sum_j exp(x_j)) over the selected j (shifted by the max for range)."""
    mask = np.ones_like(x, bool) if mask is None else mask
    m = np.max(np.where(mask, x, -np.inf), axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        s = np.log(
            np.sum(np.where(mask, np.exp(np.where(mask, x, -np.inf) - m), 0), axis, keepdims=True)
        )
    return x - m - s


def np_xlogy(y, lp):
    """y * lp with 0 * lp = 0 (also for lp = -inf)."""
    out = np.zeros(np.broadcast(y, lp).shape)
    y, lp = np.broadcast_to(y, out.shape), np.broadcast_to(lp, out.shape)
    nz = y != 0
    out[nz] = y[nz] * lp[nz]
    return out


def np_log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def np_sigmoid(x):
    return np.exp(np_log_sigmoid(x))


def np_sparsemax(z):
    """Martins and Astudillo 2016, Algorithm 1 (one vector)."""
    zs = np.sort(z)[::-1]
    k = np.arange(1, z.size + 1)
    support = 1 + k * zs > np.cumsum(zs)
    kz = k[support][-1]
    tau = (np.cumsum(zs)[kz - 1] - 1) / kz
    return np.maximum(z - tau, 0), tau


def _logits(edges=True):
    x = RNG.normal(size=(B, K)) * 3
    if edges:
        x[0, 0], x[0, 1] = 1e4, -1e4
        x[1] = [-1e4, 0.5, 1e4, 3.0, -2.0]
    return x


def _probs(zeros=True):
    y = RNG.dirichlet(np.ones(K), size=B)
    if zeros:
        y[0] = [1, 0, 0, 0, 0]
        y[2] = [0, 0.5, 0.5, 0, 0]
    return y


# ----------------------------------------------------------------------------- cross-entropies


def test_softmax_cross_entropy_definition():
    """CE = -sum_k y_k log softmax(x)_k, 0 log 0 = 0 (Goodfellow et al. 2016, 6.2.2.3); with a
    mask the softmax and the sum run over the selected classes only, and an empty row is 0."""
    x, y = _logits(), _probs()
    mask = RNG.random((B, K)) > 0.3
    mask[3] = False
    mask[0] = True
    with jax.enable_x64(True):
        lp = np_log_softmax(x)
        close(L.softmax_cross_entropy(x, y), -np.sum(np_xlogy(y, lp), -1))
        lpm = np_log_softmax(x, mask=mask)
        want = -np.sum(np.where(mask & (y != 0), y * lpm, 0), -1)
        close(L.softmax_cross_entropy(x, y, where=mask), want)
        close(
            L.softmax_cross_entropy(x, y, where=mask.any(-1)),
            -np.sum(np_xlogy(y, lp), -1) * mask.any(-1),
        )
        # class axis first, and all axes
        close(L.softmax_cross_entropy(x.T, y.T, axis=0), -np.sum(np_xlogy(y, lp), -1))
        flat = np_log_softmax(x.ravel())
        close(
            L.softmax_cross_entropy(x, y / B, axis=None),
            -np.sum(np_xlogy(y / B, flat.reshape(x.shape))),
        )
        # 0 * log 0 with a logit of -inf: 0, for safe_ and plain alike
        xi = x.copy()
        xi[2, 0] = -np.inf
        want = -np.sum(np_xlogy(y, np_log_softmax(xi)), -1)
        close(L.softmax_cross_entropy(xi, y), want)
        close(L.safe_softmax_cross_entropy(xi, y), want)


def test_integer_labels_definition():
    """CE = logsumexp(x) - x_label; a tuple of axes flattens them row-major."""
    x = _logits()
    labels = RNG.integers(0, K, B)
    labels[1] = 2  # the +1e4 logit: loss 0
    mask = RNG.random((B, K)) > 0.3
    mask[np.arange(B), labels] = True
    mask[4] = False
    with jax.enable_x64(True):
        lp = np_log_softmax(x)
        close(L.softmax_cross_entropy_with_integer_labels(x, labels), -lp[np.arange(B), labels])
        lpm = np_log_softmax(x, mask=mask)
        want = np.where(mask.any(-1), -lpm[np.arange(B), labels], 0)
        close(L.softmax_cross_entropy_with_integer_labels(x, labels, where=mask), want)
        x3 = RNG.normal(size=(2, 3, 4))
        lab = np.array([5, 11])
        want = -np_log_softmax(x3.reshape(2, 12))[np.arange(2), lab]
        close(L.softmax_cross_entropy_with_integer_labels(x3, lab, axis=(1, 2)), want)
        want = -np_log_softmax(x3.transpose(0, 2, 1).reshape(2, 12))[np.arange(2), lab]
        close(L.softmax_cross_entropy_with_integer_labels(x3, lab, axis=(2, 1)), want)
    with pytest.raises(TypeError, match="labels has dtype"):
        L.softmax_cross_entropy_with_integer_labels(x, labels.astype(np.float32))
    with pytest.raises(ValueError, match="labels has shape"):
        L.softmax_cross_entropy_with_integer_labels(x, labels[:3])


def test_poly_loss_definition():
    """Poly-1 = CE + eps * (1 - P_t) (Leng et al. 2022, eq. 3), with soft labels
    sum_k y_k (1 - p_k)."""
    x, y = _logits(), _probs()
    with jax.enable_x64(True):
        lp = np_log_softmax(x)
        ce = -np.sum(np_xlogy(y, lp), -1)
        for eps in (2.0, -1.0):
            want = ce + eps * np.sum(y * (1 - np.exp(lp)), -1)
            close(L.poly_loss_cross_entropy(x, y, epsilon=eps), want)


# ----------------------------------------------------------------------------- sigmoid losses


def test_sigmoid_binary_cross_entropy_definition():
    """BCE = -y log(sigmoid(x)) - (1 - y) log(1 - sigmoid(x)) (Goodfellow et al. 6.2.2.2)."""
    x = _logits()
    y = RNG.random((B, K))
    y[:2] = RNG.integers(0, 2, (2, K))
    with jax.enable_x64(True):
        want = -y * np_log_sigmoid(x) - (1 - y) * np_log_sigmoid(-x)
        close(L.sigmoid_binary_cross_entropy(x, y), want)


def test_sigmoid_focal_loss_definition():
    """Lin et al. 2017, eq. 5: FL = -alpha_t (1 - p_t) ** gamma log(p_t) for labels in {0, 1},
    p_t = p if y = 1 else 1 - p; soft labels use 1 - p_t = (1 - y) p + y (1 - p)."""
    x = _logits()
    y = RNG.integers(0, 2, (B, K)).astype(np.float64)
    with jax.enable_x64(True):
        p, q = np_sigmoid(x), np_sigmoid(-x)
        log_pt = np.where(y == 1, np_log_sigmoid(x), np_log_sigmoid(-x))
        one_minus_pt = np.where(y == 1, q, p)
        for alpha, gamma in itertools.product((None, 0.25), (0.0, 0.5, 2.0)):
            a_t = 1.0 if alpha is None else np.where(y == 1, alpha, 1 - alpha)
            want = -a_t * one_minus_pt**gamma * log_pt
            close(L.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma), want)
        ys = RNG.random((B, K))
        bce = -ys * np_log_sigmoid(x) - (1 - ys) * np_log_sigmoid(-x)
        close(L.sigmoid_focal_loss(x, ys, gamma=1.5), bce * ((1 - ys) * p + ys * q) ** 1.5)


# ----------------------------------------------------------------------------- margins, sparsemax


def test_margin_losses_definition():
    """Hinge max(0, 1 - s t), perceptron max(0, -s t); multiclass: Crammer-Singer
    max_k(s_k + [k != y]) - s_y and the perceptron max_k s_k - s_y; binary sparsemax
    (Blondel et al. 2020, sec. 4.4): sparse_plus(-s) for y = 1, sparse_plus(s) for y = 0."""
    s = RNG.normal(size=(B, K)) * 2
    t = RNG.choice([-1.0, 1.0], (B, K))
    labels = RNG.integers(0, K, B)
    y01 = (t > 0).astype(np.int32)
    with jax.enable_x64(True):
        close(L.hinge_loss(s, t), np.maximum(0, 1 - s * t))
        close(L.perceptron_loss(s, t), np.maximum(0, -s * t))
        other = s + (np.arange(K)[None] != labels[:, None])
        close(L.multiclass_hinge_loss(s, labels), other.max(-1) - s[np.arange(B), labels])
        close(L.multiclass_perceptron_loss(s, labels), s.max(-1) - s[np.arange(B), labels])
        z = np.where(y01 == 1, -s, s)
        sparse_plus = np.where(z <= -1, 0, np.where(z >= 1, z, (z + 1) ** 2 / 4))
        close(L.sparsemax_loss(s, y01), sparse_plus)
    with pytest.raises(ValueError, match="targets has shape"):
        L.perceptron_loss(s, t[:, :2])


def test_multiclass_sparsemax_loss_definition():
    """Martins and Astudillo 2016, eq. 16: L = -z_k + 1/2 sum_{j in S(z)} (z_j^2 - tau^2) + 1/2."""
    z = RNG.normal(size=(B, K)) * 2
    z[0] = [5.0, -5.0, 0.0, 0.0, 0.0]  # support of one element
    z[1] = 1.0  # ties: uniform
    labels = RNG.integers(0, K, B)
    want = []
    for row, k in zip(z, labels):
        p, tau = np_sparsemax(row)
        s = p > 0
        want.append(-row[k] + 0.5 * np.sum(row[s] ** 2 - tau**2) + 0.5)
    with jax.enable_x64(True):
        # the gradient is sparsemax(z) - one_hot(label) (Martins and Astudillo, eq. 17)
        value_and_grad = jax.value_and_grad(
            lambda v: jnp.sum(L.multiclass_sparsemax_loss(v, labels)), has_aux=False
        )
        per_example = jax.jit(lambda v: L.multiclass_sparsemax_loss(v, labels))(z)
        close(per_example, np.array(want))
        _, g = jax.jit(value_and_grad)(jnp.asarray(z))
        onehot = np.eye(K)[labels]
        close(g, np.stack([np_sparsemax(r)[0] for r in z]) - onehot)


# ----------------------------------------------------------------------------- divergences


def test_kl_divergences_definition():
    """KL(t || p) = sum t (log t - log p), 0 log 0 = 0 (Kullback and Leibler 1951); the
    generalized form adds sum(p - t) (Boyd and Vandenberghe 2004, p. 90)."""
    t = _probs()
    lp = np_log_softmax(_logits(edges=False))
    lp[0, 1] = -np.inf  # target 0 where the prediction is 0
    mask = RNG.random((B, K)) > 0.3
    mask[5] = False
    with jax.enable_x64(True), np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(t == 0, 0, t * (np.log(t) - lp))
        close(L.kl_divergence(lp, t), terms.sum(-1))
        close(L.kl_divergence(lp, t, where=mask), np.where(mask, terms, 0).sum(-1))
        close(L.kl_divergence_with_log_targets(lp, np.log(t)), terms.sum(-1))
        meas = RNG.random((B, K)) * 2
        lq = RNG.normal(size=(B, K))
        gen = (meas * (np.log(meas) - lq) + np.exp(lq) - meas).sum(-1)
        close(L.generalized_kl_divergence(lq, meas), gen)
        close(L.convex_kl_divergence(lq, meas), gen)


# ----------------------------------------------------------------------------- regression


def test_regression_losses_definition():
    """Squared error e^2, l2 e^2 / 2 (Bishop 2006, eq. 1.2), Huber (Huber 1964): e^2 / 2 for
    |e| <= delta, else delta (|e| - delta / 2); log-cosh log(cosh e) (series e^2/2 - e^4/12
    for tiny e); cosine similarity a.b / (|a| |b|)."""
    p, t = RNG.normal(size=(B, K)) * 3, RNG.normal(size=(B, K))
    e = p - t
    with jax.enable_x64(True):
        close(L.squared_error(p, t), e**2)
        close(L.squared_error(p), p**2)
        close(L.l2_loss(p, t), e**2 / 2)
        for delta in (0.5, 1.0, 4.0):
            a = np.abs(e)
            want = np.where(a <= delta, e**2 / 2, delta * (a - delta / 2))
            close(L.huber_loss(p, t, delta=delta), want)
        close(L.log_cosh(p, t), np.log(np.cosh(e)))
        tiny = np.array([1e-9, -3e-6, 1e-4, 0.0])
        close(L.log_cosh(tiny), tiny**2 / 2 - tiny**4 / 12, atol=0)
        big = np.array([800.0, -1e4])
        close(L.log_cosh(big), np.abs(big) - np.log(2))
        dot = np.sum(p * t, -1)
        cos = dot / (np.linalg.norm(p, axis=-1) * np.linalg.norm(t, axis=-1))
        close(L.cosine_similarity(p, t), cos)
        close(L.cosine_distance(p, t), 1 - cos)
        mask = RNG.random((B, K)) > 0.4
        pm, tm = np.where(mask, p, 0), np.where(mask, t, 0)
        cosm = np.sum(pm * tm, -1) / (np.linalg.norm(pm, axis=-1) * np.linalg.norm(tm, axis=-1))
        close(L.cosine_similarity(p, t, where=mask), np.nan_to_num(cosm))
        z = np.zeros((1, K))
        close(L.cosine_similarity(z, t[:1]), [0.0])  # a zero vector: 0, not NaN
    with pytest.raises(ValueError, match="targets has shape"):
        L.squared_error(p, t[:1])


def test_smooth_labels_definition():
    """(1 - alpha) y + alpha / K (Szegedy et al. 2016, sec. 7); with a mask K counts the
    selected classes."""
    y = np.eye(K)[RNG.integers(0, K, B)]
    mask = RNG.random((B, K)) > 0.3
    mask[:, 0] = True
    with jax.enable_x64(True):
        close(L.smooth_labels(y, 0.1), 0.9 * y + 0.1 / K)
        close(L.smooth_labels(y, 0.2, where=mask), 0.8 * y + 0.2 / mask.sum(-1, keepdims=True))


# ----------------------------------------------------------------------------- ranking


def test_ranking_softmax_loss_definition():
    """Listwise softmax: -sum_i y_i log(exp(s_i) / sum_j exp(s_j)) per list over valid items
    (Cao et al. 2007), then the mean over lists with a valid item."""
    s, y = RNG.normal(size=(B, K)), RNG.integers(0, 3, (B, K)).astype(np.float64)
    w = RNG.random((B, K))
    mask = RNG.random((B, K)) > 0.3
    mask[2] = False
    with jax.enable_x64(True):
        per = -np.sum(y * np_log_softmax(s), -1)
        close(L.ranking_softmax_loss(s, y), per.mean())
        close(L.ranking_softmax_loss(s, y, reduce_fn=jnp.sum), per.sum())
        perm = -np.sum(
            np.where(mask, np_xlogy(np.where(mask, y * w, 0), np_log_softmax(s, mask=mask)), 0), -1
        )
        got = L.ranking_softmax_loss(s, y, where=mask, weights=w, reduce_fn=None)
        close(got, np.where(mask.any(-1), perm, 0))
        close(L.ranking_softmax_loss(s, y, where=mask, weights=w), perm[mask.any(-1)].mean())
        close(L.ranking_softmax_loss(s, y, where=np.zeros_like(mask)), 0.0)


# ----------------------------------------------------------------------------- segmentation


def _np_dice(probs, t, smooth, alpha, beta):
    """Tversky index per class over the pixel axes (Salehi et al. 2017, eq. 3; Dice for
    alpha = beta = 1/2, Milletari et al. 2016)."""
    ax = tuple(range(1, probs.ndim - 1))
    tp = np.sum(probs * t, ax)
    fp = np.sum(probs * (1 - t), ax)
    fn = np.sum((1 - probs) * t, ax)
    return 1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


def test_dice_losses_definition():
    x = RNG.normal(size=(2, 4, 3, 3))
    t = np.eye(3)[RNG.integers(0, 3, (2, 4, 3))]
    e = np.exp(x - x.max(-1, keepdims=True))
    probs = e / e.sum(-1, keepdims=True)
    with jax.enable_x64(True):
        per = _np_dice(probs, t, 1.0, 0.5, 0.5)
        close(L.dice_loss(x, t), per.mean(-1))
        per = _np_dice(probs, t, 0.5, 0.3, 0.7)
        got = L.dice_loss(x, t, smooth=0.5, alpha=0.3, beta=0.7, reduction="none")
        close(got, per)
        cw = np.array([0.5, 1.0, 2.0])
        got = L.dice_loss(x, t, class_weights=cw, reduction="sum", ignore_background=True)
        close(got, (_np_dice(probs, t, 1.0, 0.5, 0.5) * cw)[:, 1:].sum(-1))
        close(
            L.dice_loss(probs, t, apply_softmax=False), _np_dice(probs, t, 1.0, 0.5, 0.5).mean(-1)
        )
        # generalized Dice: class weights 1 / (freq^2 + 1e-7), rescaled to sum to K (Sudre 2017)
        freq = t.sum((0, 1, 2))
        w = 1 / (freq**2 + 1e-7)
        w = w / w.sum() * 3
        close(
            L.multiclass_generalized_dice_loss(x, t), np.mean(_np_dice(probs, t, 1.0, 0.5, 0.5) * w)
        )
        # binary: sigmoid probabilities of one channel; probabilities accepted as they are
        xb, tb = RNG.normal(size=(2, 4, 3)), RNG.integers(0, 2, (2, 4, 3)).astype(np.float64)
        pb = np_sigmoid(xb)[..., None]
        close(L.binary_dice_loss(xb, tb), _np_dice(pb, tb[..., None], 1.0, 0.5, 0.5)[:, 0])
        got = L.binary_dice_loss(pb[..., 0], tb, apply_sigmoid=False)
        close(got, _np_dice(pb, tb[..., None], 1.0, 0.5, 0.5)[:, 0])
    with pytest.raises(ValueError, match="sum to 1"):
        L.dice_loss(probs * 2, t, apply_softmax=False)
    with pytest.raises(ValueError, match="reduction"):
        L.dice_loss(x, t, reduction="max")


# ----------------------------------------------------------------------------- self-supervised


def test_ntxent_definition():
    """Chen et al. 2020, eq. 1 for two views per label: l_ij = -log(exp(s_ij / tau) /
    sum_{k != i} exp(s_ik / tau)), averaged over the ordered positive pairs. With three views
    the denominator holds one positive and the negatives (the docstring's definition)."""
    emb = RNG.normal(size=(6, 3))
    labels = np.array([0, 1, 2, 0, 1, 2])
    n = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    tau = 0.5
    sim = n @ n.T / tau
    losses = []
    for i, j in itertools.permutations(range(6), 2):
        if labels[i] == labels[j]:
            others = [k for k in range(6) if k != i]
            losses.append(-(sim[i, j] - np.log(np.sum(np.exp(sim[i, others])))))
    with jax.enable_x64(True):
        close(L.ntxent(emb, labels, tau), np.mean(losses))
        lab3 = np.array([0, 0, 0, 1, 1, 1])
        losses = []
        for i, j in itertools.permutations(range(6), 2):
            if lab3[i] == lab3[j]:
                neg = [k for k in range(6) if lab3[k] != lab3[i]]
                denom = np.exp(sim[i, j]) + np.sum(np.exp(sim[i, neg]))
                losses.append(-(sim[i, j] - np.log(denom)))
        close(L.ntxent(emb, lab3, tau), np.mean(losses))
        close(L.ntxent(emb, np.arange(6), tau), 0.0)  # no positive pair: 0, not NaN


def test_triplet_margin_loss_definition():
    """Balntas et al. 2016, eq. 2: max(d(a, p) - d(a, n) + margin, 0), d the l_p distance
    (with eps inside the root)."""
    a, p, n = (RNG.normal(size=(B, K)) for _ in range(3))
    with jax.enable_x64(True):
        for deg, margin in ((2, 1.0), (1, 0.5), (3.0, 2.0)):

            def d(x, y, deg=deg):
                return (np.sum(np.abs(x - y) ** deg, -1) + 1e-6) ** (1 / deg)

            want = np.maximum(d(a, p) - d(a, n) + margin, 0)
            close(L.triplet_margin_loss(a, p, n, norm_degree=deg, margin=margin), want)


def test_fenchel_young_loss_definition():
    """Blondel et al. 2020, Def. 2 without Omega(y): max_fun(theta) - <y, theta>. With
    max_fun = logsumexp and one-hot y this is the softmax cross-entropy."""
    x = _logits(edges=False)
    y = np.eye(K)[RNG.integers(0, K, B)]
    fy = L.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    with jax.enable_x64(True):
        close(fy(x, y), -np.sum(y * np_log_softmax(x), -1))
        close(fy(x[None], y[None])[0], -np.sum(y * np_log_softmax(x), -1))


# ----------------------------------------------------------------------------- CTC


def _ctc_brute_force(log_probs, labels, blank):
    """-log sum over all alignments pi in K^T with B(pi) = labels of prod_t y_t(pi_t), where
    B removes repeats and then blanks (Graves et al. 2006, eqs. 2 and 3)."""
    frames, classes = log_probs.shape
    total = []
    for path in itertools.product(range(classes), repeat=frames):
        collapsed = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        if [c for c in collapsed if c != blank] == list(labels):
            total.append(sum(log_probs[t, c] for t, c in enumerate(path)))
    return -np.logaddexp.reduce(total) if total else np.inf


def test_ctc_against_all_alignments():
    frames, classes = 5, 3
    logits = RNG.normal(size=(4, frames, classes)) * 2
    labels = np.array([[1, 2, 0], [1, 1, 0], [2, 0, 0], [1, 2, 1]])
    label_pad = np.array([[0, 0, 1], [0, 0, 1], [0, 1, 1], [0, 0, 0]], np.float64)
    logit_pad = np.zeros((4, frames))
    logit_pad[2, 4] = 1.0
    want = []
    for b in range(4):
        t_len = int(frames - logit_pad[b].sum())
        n_len = int(3 - label_pad[b].sum())
        lp = np_log_softmax(logits[b, :t_len])
        want.append(_ctc_brute_force(lp, labels[b, :n_len], blank=0))
    rolled = np.roll(logits, -1, axis=-1)  # the blank as the last class
    lab = np.where(labels == 0, 0, labels - 1)
    with jax.enable_x64(True):
        loss, blank, label = jax.jit(L.ctc_loss_with_forward_probs)(
            logits, logit_pad, labels, label_pad
        )
        close(loss, want)
        assert blank.shape == (frames, 4, 4) and label.shape == (frames, 4, 3)
        got = jax.jit(lambda *a: L.ctc_loss(*a, blank_id=classes - 1))(
            rolled, logit_pad, lab, label_pad
        )
        close(got, want)


# ----------------------------------------------------------------------------- gradients


def _grad_cases():
    """(name, f of one float64 array, point) with the point away from any kink."""
    x = RNG.normal(size=(3, 4))
    y = RNG.dirichlet(np.ones(4), 3)
    yb = RNG.random((3, 4))
    lab = RNG.integers(0, 4, 3)
    mask = RNG.random((3, 4)) > 0.3
    mask[:, 0] = True
    t = RNG.normal(size=(3, 4))
    ctc_x = RNG.normal(size=(2, 4, 3))
    ctc_lab, ctc_pad = np.array([[1, 2], [1, 1]]), np.zeros((2, 2))
    return [
        ("softmax_cross_entropy", lambda v: L.softmax_cross_entropy(v, y, where=mask), x),
        ("integer_labels", lambda v: L.softmax_cross_entropy_with_integer_labels(v, lab), x),
        ("poly", lambda v: L.poly_loss_cross_entropy(v, y), x),
        ("sigmoid_bce", lambda v: L.sigmoid_binary_cross_entropy(v, yb), x),
        ("focal", lambda v: L.sigmoid_focal_loss(v, yb, alpha=0.3, gamma=0.7), x),
        ("sparsemax_loss", lambda v: L.sparsemax_loss(v * 0.3, (yb > 0.5).astype(int)), x),
        ("multiclass_sparsemax", lambda v: L.multiclass_sparsemax_loss(v, lab), x),
        ("kl", lambda v: L.kl_divergence(v, y), np_log_softmax(x)),
        ("kl_log", lambda v: L.kl_divergence_with_log_targets(np_log_softmax(x), v), np.log(y)),
        ("generalized_kl", lambda v: L.generalized_kl_divergence(v, yb), x),
        ("huber", lambda v: L.huber_loss(v, t, delta=0.5), x),
        ("log_cosh", lambda v: L.log_cosh(v, t), x),
        ("cosine", lambda v: L.cosine_distance(v, t, where=mask), x),
        ("ranking", lambda v: L.ranking_softmax_loss(v, yb, where=mask), x),
        ("dice", lambda v: L.dice_loss(v[None], np.eye(4)[lab][None]), x),
        ("ntxent", lambda v: L.ntxent(v, np.array([0, 1, 0])), x),
        ("triplet", lambda v: L.triplet_margin_loss(v, t, y, margin=5.0), x),
        ("ctc", lambda v: L.ctc_loss(v, np.zeros((2, 4)), ctc_lab, ctc_pad), ctc_x),
    ]


def test_gradients_match_finite_differences():
    """check_grads (reverse mode against central differences) on every loss at once: the sum
    of all losses as a function of all their inputs, jitted once."""
    cases = _grad_cases()
    points = [jnp.asarray(p) for _, _, p in cases]

    def total(pts):
        return sum(jnp.sum(f(v)) for (_, f, _), v in zip(cases, pts))

    with jax.enable_x64(True):
        points = [jnp.asarray(p, jnp.float64) for p in points]
        check_grads(jax.jit(total), (points,), order=1, modes=("rev",))


def test_gradients_finite_at_the_edges():
    """Logits of +-1e4 (and -inf), probabilities of exactly 0 and 1, masks selecting nothing."""
    x = jnp.asarray([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, 1e4, 1e4], [0.0, 0.0, 0.0, 0.0]])
    y = jnp.asarray([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0.25, 0.25, 0.5, 0]])
    y01 = jnp.asarray([[1.0, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0]])
    none = jnp.zeros((3, 4), bool)
    some = none.at[0, :2].set(True)
    lab = jnp.asarray([0, 1, 3])
    fns = {
        "ce": lambda v: L.softmax_cross_entropy(v, y),
        "ce_empty": lambda v: L.softmax_cross_entropy(v, y, where=none),
        "ce_some": lambda v: L.softmax_cross_entropy(v, y, where=some),
        "int_empty": lambda v: L.softmax_cross_entropy_with_integer_labels(v, lab, where=none),
        "int": lambda v: L.softmax_cross_entropy_with_integer_labels(v, lab),
        "poly_empty": lambda v: L.poly_loss_cross_entropy(v, y, where=none),
        "bce": lambda v: L.sigmoid_binary_cross_entropy(v, y01),
        "focal": lambda v: L.sigmoid_focal_loss(v, y01, gamma=0.5),
        "focal_soft": lambda v: L.sigmoid_focal_loss(v, y, gamma=2.0),
        "kl": lambda v: L.kl_divergence(jax.nn.log_softmax(v), y),
        "kl_log": lambda v: L.kl_divergence_with_log_targets(jax.nn.log_softmax(v), jnp.log(y)),
        "kl_targets": lambda v: L.kl_divergence(jax.nn.log_softmax(v), jax.nn.softmax(2 * v)),
        "log_cosh": lambda v: L.log_cosh(v),
        "cosine_zero": lambda v: L.cosine_similarity(v * 0, y),
        "ranking_empty": lambda v: L.ranking_softmax_loss(v, y, where=none),
        "ranking_some": lambda v: L.ranking_softmax_loss(v, y, where=some),
        "ntxent_no_pairs": lambda v: L.ntxent(v, jnp.arange(3)),
        "ntxent_no_negatives": lambda v: L.ntxent(v, jnp.zeros(3, jnp.int32), 0.01),
        "sparsemax": lambda v: L.multiclass_sparsemax_loss(v, lab),
    }
    both = jax.jit(
        lambda v: {k: jax.value_and_grad(lambda u, f=f: jnp.sum(f(u)))(v) for k, f in fns.items()}
    )
    out = both(x.astype(jnp.float32))
    vals = {k: v for k, (v, _) in out.items()}
    grads = {k: g for k, (_, g) in out.items()}
    bad = [k for k in fns if not (np.all(np.isfinite(grads[k])) and np.isfinite(vals[k]))]
    assert not bad, f"non-finite value or gradient at the edges: {bad}"
    assert float(vals["ce_empty"]) == 0.0 and float(vals["int_empty"]) == 0.0
    kl_inf = L.kl_divergence(jnp.asarray([0.0, -jnp.inf]), jnp.asarray([1.0, 0.0]))
    assert float(kl_inf) == 0.0


def test_low_precision_inputs_are_computed_in_float32():
    """bfloat16 and float16 inputs: the result has the input dtype and is the float64 value
    of the (rounded) inputs, rounded once (a relative error of at most one unit in the last
    place of the output dtype)."""
    x = RNG.normal(size=(B, 16)) * 4 + 30
    y = RNG.dirichlet(np.ones(16), B)
    lab = RNG.integers(0, 16, B)

    def losses(xl):
        return [
            L.softmax_cross_entropy(xl, y),
            L.softmax_cross_entropy_with_integer_labels(xl, lab),
            L.sigmoid_binary_cross_entropy(xl - 30, y),
            L.log_cosh(xl - 30),
            L.l2_loss(xl),
        ]

    dtypes = ((jnp.bfloat16, 2.0**-8), (jnp.float16, 2.0**-11))
    inputs = [jnp.asarray(x, dtype) for dtype, _ in dtypes]
    outputs = jax.jit(lambda xs: [losses(v) for v in xs])(inputs)
    for (dtype, ulp), xl, got_all in zip(dtypes, inputs, outputs):
        x64 = np.asarray(xl.astype(jnp.float32), np.float64)
        wants = [
            -np.sum(y * np_log_softmax(x64), -1),
            -np_log_softmax(x64)[np.arange(B), lab],
            -y * np_log_sigmoid(x64 - 30) - (1 - y) * np_log_sigmoid(30 - x64),
            np.log(np.cosh(x64 - 30)),
            x64**2 / 2,
        ]
        for got, want in zip(got_all, wants):
            assert got.dtype == dtype
            np.testing.assert_allclose(np.asarray(got.astype(jnp.float32)), want, rtol=ulp)


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="logits has dtype int32"):
        L.softmax_cross_entropy(jnp.ones((2, 3), jnp.int32), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="same leading"):
        L.ntxent(jnp.ones((4, 2)), jnp.arange(3))
    with pytest.raises(ValueError, match=r"\[B, T, K\]"):
        L.ctc_loss(
            jnp.ones((2, 3)), jnp.zeros((2,)), jnp.ones((2, 1), jnp.int32), jnp.zeros((2, 1))
        )


def test_top_level_names_are_the_losses():
    for name in ("softmax_cross_entropy", "ctc_loss", "squared_error", "sigmoid_focal_loss"):
        assert getattr(gradtx, name) is getattr(L, name)


# ----------------------------------------------------------------------------- optax dialect


def _optax_cases():
    """One random float64 call per optax.losses name: (name, args, kwargs)."""
    r = np.random.default_rng(7)
    x, t = r.normal(size=(B, K)) * 3, r.normal(size=(B, K))
    y = r.dirichlet(np.ones(K), B)
    yb = r.integers(0, 2, (B, K)).astype(np.float64)
    lab = r.integers(0, K, B)
    mask = r.random((B, K)) > 0.3
    pm = r.choice([-1.0, 1.0], (B, K))
    lp = np_log_softmax(x)
    seg_x = r.normal(size=(2, 4, 4, 3))
    seg_t = np.eye(3)[r.integers(0, 3, (2, 4, 4))]
    ctc = (
        r.normal(size=(2, 6, 4)),
        np.array([[0.0] * 6, [0.0] * 4 + [1.0] * 2]),
        np.array([[1, 1, 2], [3, 1, 0]]),
        np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    )
    return [
        ("softmax_cross_entropy", (x, y), {"where": mask}),
        ("softmax_cross_entropy_with_integer_labels", (x, lab), {"where": mask}),
        ("safe_softmax_cross_entropy", (x, y), {}),
        ("sigmoid_binary_cross_entropy", (x, yb), {}),
        ("sigmoid_focal_loss", (x, y), {"alpha": 0.3, "gamma": 1.5}),
        ("poly_loss_cross_entropy", (x, y), {"epsilon": 1.5, "where": mask}),
        ("hinge_loss", (x, pm), {}),
        ("perceptron_loss", (x, pm), {}),
        ("sparsemax_loss", (x, yb), {}),
        ("multiclass_hinge_loss", (x, lab), {}),
        ("multiclass_perceptron_loss", (x, lab), {}),
        ("multiclass_sparsemax_loss", (x, lab), {}),
        ("kl_divergence", (lp, y), {"where": mask}),
        ("kl_divergence_with_log_targets", (lp, np.log(y)), {}),
        ("generalized_kl_divergence", (t, np.abs(x)), {}),
        ("convex_kl_divergence", (t, np.abs(x)), {}),
        ("ctc_loss", ctc, {}),
        ("ctc_loss_with_forward_probs", ctc, {"blank_id": 2}),
        ("squared_error", (x, t), {}),
        ("l2_loss", (x, t), {}),
        ("huber_loss", (x, t), {"delta": 0.7}),
        ("log_cosh", (x, t), {}),
        ("cosine_similarity", (x, t), {"where": mask}),
        ("cosine_distance", (x, t), {"epsilon": 1e-3}),
        ("smooth_labels", (y, 0.1), {"where": mask}),
        ("ranking_softmax_loss", (x, yb), {"where": mask, "weights": np.abs(t)}),
        ("dice_loss", (seg_x, seg_t), {"alpha": 0.3, "beta": 0.7, "ignore_background": True}),
        ("multiclass_generalized_dice_loss", (seg_x, seg_t), {}),
        ("binary_dice_loss", (seg_x[..., 0], seg_t[..., 0]), {}),
        ("ntxent", (x, np.array([0, 0, 1, 1, 2, 2])), {"temperature": 0.3}),
        ("triplet_margin_loss", (x, t, y), {}),
    ]


def test_dialect_losses_equal_optax():
    optax = pytest.importorskip("optax")
    import gradtx.compat.optax as dialect
    import gradtx.compat.optax.losses as dialect_losses

    cases = _optax_cases()
    names = {c[0] for c in cases} | {"make_fenchel_young_loss"}
    public = {n for n in dir(optax.losses) if not n.startswith("_")}
    assert names == set(dialect_losses.__all__) == public

    def run(module):
        return {n: getattr(module, n)(*a, **k) for n, a, k in cases}

    with (
        jax.enable_x64(True),
        jax.numpy_dtype_promotion("standard"),
        jax.numpy_rank_promotion("allow"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", DeprecationWarning)  # optax.convex_kl_divergence
        want = jax.jit(lambda: run(optax.losses))()
        got = jax.jit(lambda: run(dialect_losses))()
        for name, _, _ in cases:
            for w, g in zip(jax.tree.leaves(want[name]), jax.tree.leaves(got[name])):
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=name)
            if hasattr(optax, name):
                assert getattr(dialect, name) is getattr(dialect_losses, name), name
        fy_o = optax.losses.make_fenchel_young_loss(jax.scipy.special.logsumexp)
        fy_g = dialect_losses.make_fenchel_young_loss(jax.scipy.special.logsumexp)
        x, y = cases[0][1]
        np.testing.assert_allclose(fy_g(x, y), fy_o(x, y), rtol=1e-12)


def test_dialect_signatures_equal_optax():
    """Names, order, kinds and defaults of every argument, for the losses and projections."""
    optax = pytest.importorskip("optax")
    import inspect

    import gradtx.compat.optax.losses as dialect_losses
    import gradtx.compat.optax.projections as dialect_projections

    for theirs, ours in ((optax.losses, dialect_losses), (optax.projections, dialect_projections)):
        for name in ours.__all__:
            want = inspect.signature(getattr(theirs, name)).parameters
            got = inspect.signature(getattr(ours, name)).parameters
            assert [(p.name, p.kind, p.default) for p in got.values()] == [
                (p.name, p.kind, p.default) for p in want.values()
            ], name
