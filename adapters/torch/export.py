"""A spec as a plain PyTorch snippet: ``export(spec) -> str`` (entry point ``regcore.exporters``).

The snippet imports ``re``, ``collections.abc`` and ``torch`` only, never regcore, and defines:

* ``regularization(model) -> torch.Tensor``: the spec's penalty on an ``nn.Module``'s parameters,
  a 0-dim tensor that autograd differentiates; add it to the training loss. Parameters are named
  as ``named_parameters()`` names them (tied ones once, under their first name) and get their
  role from the owning module's type, as :mod:`regcore_adapters.torch.modules` does (``Linear``,
  convolutions, recurrent and attention layers: ``weight``/``bias``; normalization layers: scale
  ``norm_scale``, shift ``bias``; ``Embedding``: ``embedding``; other modules: ``*bias*`` →
  ``bias``, ``ndim >= 2`` → ``weight``, else ``other``; the snippet holds ``role_of`` itself,
  copied as written). Axis-dependent terms (group lasso axis, orthogonal mode) see the canonical
  ``(fan_in, fan_out)`` layout of ``view_of`` (copied as written): ``Linear``, recurrent and
  attention matrices transposed, convolution weights permuted to ``(*kernel_size, in, out)``,
  depthwise ones to ``(*kernel_size, channels, multiplier)``. The penalty functions are the
  torch backend's own kernels (:mod:`regcore_adapters.torch.penalties`), copied as written, with
  regcore's ``ORTHOGONAL_EPSILON`` as a constant: ``torch.abs`` has subgradient 0 at 0 and
  ``torch.linalg.vector_norm`` gradient 0 at 0, so an all-zero group or row has gradient 0,
  not NaN. float16/bfloat16 parameters accumulate in float32.
* ``decay_(model, lr)``: ``p.mul_(1 - lr * rate)`` under ``torch.no_grad()`` for the spec's
  decoupled-decay parameters; call it before ``optimizer.step()`` (AdamW's order).

Selection runs when the snippet runs, by regcore's rules; a rule that selects nothing raises
``ValueError``. Importing this module imports no torch: the snippet is only text.
"""

from __future__ import annotations

from pathlib import Path

from regcore import Spec
from regcore import export_support as support

CONTRACT = (
    "regularization(model) -> torch.Tensor: the penalty on model's parameters (roles from module",
    "types; kernels seen in the canonical (fan_in, fan_out) layout, Keras's), 0-dim,",
    "differentiable by autograd: loss = data_loss + regularization(model).",
    "decay_(model, lr): p *= 1 - lr * rate in place on the decayed parameters, under no_grad;",
    "call it before optimizer.step() (AdamW's order).",
)

IMPORTS = "from collections.abc import Callable\n\nimport torch\nfrom torch import nn\n"

ROLES = Path(__file__).with_name("modules.py")
"""The backend's role inference ``role_of(module, name, param)`` and canonical layout
``view_of(module, name)``, copied as written too."""

RUNTIME = '''\
def _parameters(model):
    """{dotted name: (role, parameter, canonical view, why it has no canonical layout or "")},
    tied parameters once."""
    out, seen = {}, set()
    for prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                full = f"{prefix}.{name}" if prefix else name
                out[full] = (role_of(module, name, param), param, view_of(module, name)(param),
                             noncanonical_of(module, name))
    return out


def _infos(params):
    return [(name, role, tuple(view.shape)) for name, (role, _, view, _) in params.items()]


def _noncanonical(params):
    return {name: why for name, (*_, why) in params.items() if why}


def regularization(model):
    """The spec's penalty on model's parameters: a 0-dim tensor autograd differentiates."""
    params = _parameters(model)
    plan = _penalty_plan(_infos(params), _noncanonical(params))
    dtype, device = torch.float32, torch.device("cpu")
    for _, param, *_ in params.values():
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
    return support.snippet(spec, module=__name__, framework="PyTorch", contract=CONTRACT,
                           imports=IMPORTS, runtime=RUNTIME,
                           helpers=[support.definitions(ROLES, ["role_of", "view_of",
                                                                "noncanonical_of"])])
