"""The scenario networks by hand: forward pass, losses and backpropagation."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from regcore import ActivityAssignment, ModelSpec
from regcore_adapters.numpy import penalties


def activate(name: str, z: np.ndarray) -> np.ndarray:
    return np.tanh(z) if name == "tanh" else np.maximum(z, 0)


def activation_grad(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return 1 - a * a
    return (z > 0).astype(z.dtype)  # relu'(0) = 0, as torch, TF and JAX define it


def data_loss(kind: str, out: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Data loss and its gradient with respect to the network output."""
    m = out.shape[0]
    if kind == "softmax_xent":
        shifted = out - np.max(out, axis=1, keepdims=True)
        log_z = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        log_p = shifted - log_z
        rows = np.arange(m)
        loss = -np.sum(log_p[rows, y]) / out.dtype.type(m)
        d_out = np.exp(log_p)
        d_out[rows, y] -= 1
        return loss, d_out / out.dtype.type(m)
    r = out - y
    if kind == "mse":
        n = out.dtype.type(r.size)
        return np.sum(r * r) / n, (2 * r) / n
    n = out.dtype.type(m)  # half_mse: 1/(2m) Σ r²
    return np.sum(r * r) / (2 * n), r / n


def forward_backward(
    model: ModelSpec, params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray,
    activity: tuple[ActivityAssignment, ...] = (),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Data loss (plus the ``activity`` penalties on the layers' outputs, ``dense_i`` after
    its activation) and its gradient for every parameter of ``model``."""
    acts, pre = [x], []
    for i in range(model.layers):
        z = acts[-1] @ params[f"dense_{i}.kernel"] + params[f"dense_{i}.bias"]
        pre.append(z)
        acts.append(activate(model.activation, z) if i < model.layers - 1 else z)
    loss, dz = data_loss(model.loss, acts[-1], y)
    value, d_out = penalties.activity(
        activity, {f"dense_{i}": acts[i + 1] for i in range(model.layers)})
    last = f"dense_{model.layers - 1}"
    loss, dz = (loss + value, dz + d_out[last]) if last in d_out else (loss + value, dz)
    grads: dict[str, np.ndarray] = {}
    for i in reversed(range(model.layers)):
        grads[f"dense_{i}.kernel"] = acts[i].T @ dz
        grads[f"dense_{i}.bias"] = np.sum(dz, axis=0)
        if i:
            da = dz @ params[f"dense_{i}.kernel"].T
            if f"dense_{i - 1}" in d_out:
                da = da + d_out[f"dense_{i - 1}"]
            dz = da * activation_grad(model.activation, pre[i - 1], acts[i])
    return loss, grads
