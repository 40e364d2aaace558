"""A spec as a plain PyTorch snippet: ``export(spec) -> str`` (entry point ``regcore.exporters``).

The snippet imports ``re`` and ``torch`` only, never regcore, and defines:

* ``regularization(model) -> torch.Tensor``: the spec's penalty on an ``nn.Module``'s parameters,
  a 0-dim tensor that autograd differentiates; add it to the training loss. Parameters are named
  as ``named_parameters()`` names them (tied ones once, under their first name) and get their
  role from the owning module's type, as :mod:`regcore_adapters.torch.modules` does (``Linear``,
  convolutions, recurrent and attention layers: ``weight``/``bias``; normalization layers: scale
  ``norm_scale``, shift ``bias``; ``Embedding``: ``embedding``; other modules: ``*bias*`` →
  ``bias``, ``ndim >= 2`` → ``weight``, else ``other``). Axis-dependent terms (group lasso axis,
  orthogonal mode) see the canonical ``(fan_in, fan_out)`` layout: ``Linear.weight`` transposed,
  convolution weights permuted to ``(*kernel_size, in, out)``. ``torch.abs`` has subgradient 0 at
  0; norms go through a guarded square root, so an all-zero group or row has gradient 0, not
  NaN. float16/bfloat16 parameters accumulate in float32.
* ``decay_(model, lr)``: ``p.mul_(1 - lr * rate)`` under ``torch.no_grad()`` for the spec's
  decoupled-decay parameters; call it before ``optimizer.step()`` (AdamW's order).

Selection runs when the snippet runs, by regcore's rules; a rule that selects nothing raises
``ValueError``. Importing this module imports no torch: the snippet is only text.
"""

from __future__ import annotations

from regcore import Spec
from regcore import export_support as support

CONTRACT = (
    "regularization(model) -> torch.Tensor: the penalty on model's parameters (roles from module",
    "types; Linear/conv weights seen in the canonical (fan_in, fan_out) layout), 0-dim,",
    "differentiable by autograd: loss = data_loss + regularization(model).",
    "decay_(model, lr): p *= 1 - lr * rate in place on the decayed parameters, under no_grad;",
    "call it before optimizer.step() (AdamW's order).",
)

PRELUDE = '''\
import re

import torch
from torch import nn
'''

KERNELS = {
    "l2": '''\
def _l2(rule, w):
    return _coef(rule["coef"], w) * torch.sum(w * w)
''',
    "l1": '''\
def _l1(rule, w):
    return _coef(rule["coef"], w) * torch.sum(torch.abs(w))  # abs'(0) = 0 in torch
''',
    "elastic_net": '''\
def _elastic_net(rule, w):
    s1, s2 = _coef(rule["l1"], w), _coef(rule["l2"], w)
    return s1 * torch.sum(torch.abs(w)) + s2 * torch.sum(w * w)
''',
    "group_lasso": '''\
def _group_lasso(rule, w):
    """coef * c * sum of the slices' L2 norms along axis (canonical layout)."""
    groups = torch.movedim(w, rule["axis"], 0).reshape(w.shape[rule["axis"]], -1)
    coef = _coef(rule["coef"], w)
    if rule["scale_by_size"]:
        coef = coef * torch.sqrt(_coef(float(groups.shape[1]), w))
    return coef * torch.sum(_norm(groups, 1))
''',
    "orthogonal": '''\
def _orthogonal(rule, w):
    """coef * 0.5 * sum_{i != j} |G_ij| / (k (k - 1) / 2), G the Gram matrix of the k rows
    (columns) of w (canonical layout) each divided by max(||v||, 1e-7)."""
    rows = w if rule["mode"] == "rows" else w.T
    size = rows.shape[0]
    norms = _norm(rows, 1, keepdim=True)
    eps = _coef(1e-7, w)
    v = rows * (1 / torch.where(norms > eps, norms, eps))  # a clamped row: no gradient via norm
    gram = v @ v.T
    off = 1 - torch.eye(size, dtype=w.dtype, device=w.device)
    c = _coef(rule["coef"], w) * _coef(0.5, w) / _coef(size * (size - 1) / 2, w)
    return c * torch.sum(torch.abs(gram * off))
''',
}

HELPERS = '''\
def _coef(value, w):
    return torch.tensor(value, dtype=w.dtype, device=w.device)


def _accumulate(w):
    """w in the dtype its penalty accumulates in: float32 for float16/bfloat16, else its own."""
    return w.float() if w.dtype in (torch.float16, torch.bfloat16) else w
'''

NORM = '''\
def _norm(x, dim, keepdim=False):
    """||x||_2 along dim, with gradient 0 (not NaN) where it is 0: sqrt never sees a 0."""
    squares = torch.sum(x * x, dim=dim, keepdim=keepdim)
    positive = squares != 0  # NaN/inf propagate; only an exact 0 is guarded
    root = torch.sqrt(torch.where(positive, squares, torch.ones_like(squares)))
    return torch.where(positive, root, torch.zeros_like(squares))
'''

RUNTIME = '''\
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
          *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)
_WEIGHTED = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCellBase,
             nn.MultiheadAttention)


def _role(module, name, param):
    if isinstance(module, _NORMS):
        return "norm_scale" if name == "weight" else "bias"
    if isinstance(module, _EMBEDDINGS):
        return "embedding"
    if isinstance(module, _WEIGHTED):
        return "bias" if "bias" in name else "weight"
    if "bias" in name:
        return "bias"
    return "weight" if param.ndim >= 2 else "other"


def _canonical(module, name, param):
    """param in the canonical layout: Linear (out, in) -> (in, out), conv -> (*kernel, in, out)."""
    if name == "weight" and isinstance(module, nn.Linear):
        return param.T
    if name == "weight" and isinstance(module, nn.modules.conv._ConvNd):
        return param.permute(*range(2, param.ndim), 1, 0)
    return param


def _parameters(model):
    """{dotted name: (role, parameter, canonical view)}, tied parameters once."""
    out, seen = {}, set()
    for prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                full = f"{prefix}.{name}" if prefix else name
                out[full] = (_role(module, name, param), param, _canonical(module, name, param))
    return out


def _infos(params):
    return [(name, role, tuple(view.shape)) for name, (role, _, view) in params.items()]


def regularization(model):
    """The spec's penalty on model's parameters: a 0-dim tensor autograd differentiates."""
    params = _parameters(model)
    plan = _penalty_plan(_infos(params))
    dtype, device = torch.float32, torch.device("cpu")
    for _, param, _ in params.values():
        dtype, device = torch.promote_types(dtype, param.dtype), param.device
    total = torch.zeros((), dtype=dtype, device=device)
    for name, rule in plan:
        total = total + _KERNELS[rule["kind"]](rule, _accumulate(params[name][2])).to(dtype)
    return total


@torch.no_grad()
def decay_(model, lr):
    """p *= 1 - lr * rate, in place, for the decayed parameters."""
    params = _parameters(model)
    for name, rate in _decay_plan(_infos(params)).items():
        params[name][1].mul_(1 - lr * rate)
'''


def export(spec: Spec) -> str:
    """``spec`` as a PyTorch snippet (see the module docstring for its contract)."""
    spec = support.check_spec(spec)
    used = support.kinds(spec)
    needs_norm = any(kind in ("group_lasso", "orthogonal") for kind in used)
    return support.assemble(
        support.header(spec, module=__name__, framework="PyTorch", contract=CONTRACT),
        PRELUDE + "\n" + support.data_source(spec),
        support.selection_source(spec),
        HELPERS,
        NORM if needs_norm else "",
        *(KERNELS[kind] for kind in used),
        support.dispatch(spec),
        RUNTIME,
    )
