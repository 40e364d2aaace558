"""The scenario losses, activations and dense networks, with their backward passes by hand, in
Array API functions only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regcore import ActivityAssignment, ModelSpec
from regcore_adapters.array_api import penalties
from regcore_adapters.array_api.namespace import Standard


def activate(xp: Standard, name: str, z: Any) -> tuple[Any, Any]:
    """The activation of ``z`` and its derivative there (relu'(0) = 0, as the frameworks
    define it)."""
    if name == "tanh":
        a = xp.tanh(z)
        return a, 1 - a * a
    positive = z > 0
    return xp.where(positive, z, xp.zeros_like(z)), xp.astype(positive, z.dtype)


def data_loss(xp: Standard, kind: str, out: Any, y: Any) -> tuple[Any, Any]:
    """The data loss and its gradient with respect to the network output: ``softmax_xent``
    (mean over the batch, integer labels), ``mse`` (mean over every element), ``half_mse``
    (``1/(2m) Σ r²``)."""
    m = xp.scalar(out.shape[0], out)
    if kind == "softmax_xent":
        shifted = out - xp.max(out, axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        classes = xp.arange(out.shape[1], dtype=y.dtype, device=xp.device(y))
        onehot = xp.astype(xp.reshape(y, (-1, 1)) == classes, out.dtype)
        return -xp.sum(onehot * log_p) / m, (xp.exp(log_p) - onehot) / m
    r = out - y
    if kind == "mse":
        n = xp.scalar(xp.size(r), out)
        return xp.sum(r * r) / n, (r + r) / n
    return xp.sum(r * r) / (m + m), r / m


def forward_backward(xp: Standard, model: ModelSpec, params: Mapping[str, Any], x: Any, y: Any,
                     activity: tuple[ActivityAssignment, ...] = ()) -> tuple[Any, dict[str, Any]]:
    """The data loss plus the ``activity`` penalties (``dense_i`` after its activation) and
    its gradient for every parameter of the dense ``model``."""
    acts, slopes = [x], []
    last = model.layers - 1
    for i in range(model.layers):
        z = acts[-1] @ params[f"dense_{i}.kernel"] + params[f"dense_{i}.bias"]
        a, slope = activate(xp, model.activation, z) if i < last else (z, None)
        acts.append(a)
        slopes.append(slope)
    loss, d = data_loss(xp, model.loss, acts[-1], y)
    value, d_out = penalties.activity(
        xp, activity, {f"dense_{i}": acts[i + 1] for i in range(model.layers)})
    grads: dict[str, Any] = {}
    for i in reversed(range(model.layers)):
        if f"dense_{i}" in d_out:
            d = d + d_out[f"dense_{i}"]
        if i < last:
            d = d * slopes[i]
        grads[f"dense_{i}.kernel"] = xp.matrix_transpose(acts[i]) @ d
        grads[f"dense_{i}.bias"] = xp.sum(d, axis=0)
        if i:
            d = d @ xp.matrix_transpose(params[f"dense_{i}.kernel"])
    return loss + value, grads
