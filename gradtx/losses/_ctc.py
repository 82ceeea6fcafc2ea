"""Connectionist temporal classification (CTC): the forward algorithm in log space."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx.losses import _common as c


def ctc_loss_with_forward_probs(
    logits, logit_paddings, labels, label_paddings, *, blank_id=0, log_epsilon=-1e5
):
    """CTC loss, with the log forward variables split into blank and label states.

    With log_probs = log_softmax(logits) and the label sequence l_1..l_L of each example, the
    forward variables after frame t are
        blank[t, n] = log P(frames 1..t emit l_1..l_n, frame t is blank)      n = 0..N
        label[t, n] = log P(frames 1..t emit l_1..l_(n+1), frame t is l_(n+1)) n = 0..N-1
    and one frame updates them as (in log space; + is logaddexp where it joins paths)
        ready[n]    = blank[n] + (label[n-1] unless l_n == l_(n+1))   states that may enter l_(n+1)
        label'[n]   = (ready[n] + label[n]) * p_t(l_(n+1))
        blank'[n]   = (ready[n] + (label[n-1] if l_n == l_(n+1))) * p_t(blank)
    (a padded frame leaves both unchanged). The loss is -log P(l), with
    P(l) = blank[T, L] + label[T, L-1], which is also what blank[-1] holds on return.
    Impossible states start at ``log_epsilon`` instead of -inf, as in optax.

    Args:
        logits: shape [B, T, K], K classes including the blank.
        logit_paddings: shape [B, T]; 1.0 marks a padded frame.
        labels: integer labels, shape [B, N].
        label_paddings: shape [B, N]; 1.0 marks a padded label (labels are right-padded).
        blank_id: the class index of the blank.
        log_epsilon: the stand-in for log(0).

    Returns:
        (loss [B], blank [T, B, N+1], label [T, B, N]): the loss per sequence and the log
        forward variables above, in the dtype of ``logits``.

    References:
        Graves et al., Connectionist Temporal Classification: Labelling Unsegmented Sequence
        Data with Recurrent Neural Networks, ICML 2006, equations 6 and 7.
    """
    where_ = "gradtx.losses.ctc_loss_with_forward_probs"
    logits = c.check_floating(where_, "logits", logits)
    labels = jnp.asarray(labels)
    logit_paddings, label_paddings = jnp.asarray(logit_paddings), jnp.asarray(label_paddings)
    if logits.ndim != 3 or labels.ndim != 2:
        raise ValueError(
            f"{where_}: logits must have shape [B, T, K] and labels [B, N]; got "
            f"{logits.shape} and {labels.shape}."
        )
    c.check_same_shape(where_, "labels", labels, "label_paddings", label_paddings)
    c.check_same_shape(where_, "logits[..., 0]", logits[..., 0], "logit_paddings", logit_paddings)
    batch, frames, num_classes = logits.shape
    if labels.shape[0] != batch:
        raise ValueError(f"{where_}: labels has batch size {labels.shape[0]} but logits {batch}.")
    n_max = labels.shape[1]
    dt = c.compute_dtype(logits)
    eps = c.up(log_epsilon, dt)
    log_probs = c.log_softmax(c.up(logits, dt), -1)
    label_len = n_max - jnp.sum(label_paddings, axis=1).astype(jnp.int32)

    # repeat[b, n] = 1 when l_(n+1) == l_(n+2) (0-based: labels[b, n] == labels[b, n + 1])
    repeat = jnp.pad((labels[:, :-1] == labels[:, 1:]).astype(dt), ((0, 0), (0, 1)))
    p_blank = jnp.transpose(log_probs[:, :, blank_id])[:, :, None]  # [T, B, 1]
    in_range = (labels >= 0) & (labels < num_classes)
    index = jnp.where(in_range, labels, 0)[:, None, :]
    picked = jnp.take_along_axis(log_probs, jnp.broadcast_to(index, (batch, frames, n_max)), 2)
    p_label = jnp.transpose(jnp.where(in_range[:, None, :], picked, 0), (1, 0, 2))  # [T, B, N]
    pads = jnp.transpose(logit_paddings != 0)[:, :, None]  # [T, B, 1]

    def join_into_next(blank, extra):
        """blank[:, n + 1] += extra[:, n] (in log space)."""
        return jnp.concatenate([blank[:, :1], jnp.logaddexp(blank[:, 1:], extra)], axis=1)

    def frame(carry, inputs):
        blank, label = carry
        lp_label, lp_blank, pad = inputs
        ready = join_into_next(blank, label + eps * repeat)
        new_label = jnp.logaddexp(ready[:, :-1] + lp_label, label + lp_label)
        new_blank = join_into_next(ready + lp_blank, label + lp_blank + eps * (1 - repeat))
        new_blank = jnp.where(pad, blank, new_blank)
        new_label = jnp.where(pad, label, new_label)
        return (new_blank, new_label), (new_blank, new_label)

    blank0 = jnp.full((batch, n_max + 1), eps, dt).at[:, 0].set(0)
    label0 = jnp.full((batch, n_max), eps, dt)
    _, (blank, label) = jax.lax.scan(frame, (blank0, label0), (p_label, p_blank, pads))
    final = join_into_next(blank[-1], label[-1])
    blank = blank.at[-1].set(final)
    loss = -jnp.take_along_axis(final, label_len[:, None], axis=1)[:, 0]
    out = logits.dtype
    return loss.astype(out), blank.astype(out), label.astype(out)


def ctc_loss(logits, logit_paddings, labels, label_paddings, *, blank_id=0, log_epsilon=-1e5):
    """CTC loss per sequence: -log P(labels | logits), summed over all alignments.

    See ``ctc_loss_with_forward_probs`` for the recursion and the arguments.

    Args:
        logits: shape [B, T, K], K classes including the blank.
        logit_paddings: shape [B, T]; 1.0 marks a padded frame.
        labels: integer labels, shape [B, N].
        label_paddings: shape [B, N]; 1.0 marks a padded label (labels are right-padded).
        blank_id: the class index of the blank.
        log_epsilon: the stand-in for log(0).

    Returns:
        The loss per sequence, shape [B].

    References:
        Graves et al., Connectionist Temporal Classification, ICML 2006, equation 14.
    """
    loss, _, _ = ctc_loss_with_forward_probs(
        logits, logit_paddings, labels, label_paddings, blank_id=blank_id, log_epsilon=log_epsilon
    )
    return loss
