"""PyTorch: ``nn.Sequential`` of ``Linear`` + ``ReLU``, MSE, ``torch.optim.SGD`` (no momentum),
float32, on the CPU (``torch.set_num_threads(threads)``) and on CUDA where there is one.

Two modes, each its own group with its own baseline: ``eager`` builds every SGD with torch's
defaults (per-tensor on the CPU, ``foreach`` on CUDA); ``fused`` builds every SGD, the baseline's
included, with ``fused=True`` (one kernel per step that applies ``weight_decay`` in the same pass).

One model serves every idiom of a group (each idiom has its own optimizer over its parameters),
so every idiom reads the same memory; the weights drift a little between steps, which changes no
timing. Step idioms (each ``zero_grad(set_to_none=True)``, forward, backward, ``step()``):

* ``none``; ``loss_sum_sq`` — ``loss + λ·sum(p.pow(2).sum() for p in params)``;
* ``loss_foreach_norm`` — ``loss + λ·torch.stack(torch._foreach_norm(params)).pow(2).sum()``;
* ``native_weight_decay`` — ``SGD(..., weight_decay=2λ)``;
* ``regcore_penalty_loss`` — ``loss + PenaltyLoss(spec, model)()``;
* ``regcore_gradient_penalty`` — ``GradientPenalty(spec, model)()`` after ``backward()``, and
  ``regcore_gradient_penalty_value`` — the same with ``value=True`` (the value every step);
* ``regcore_build_optimizer`` — ``build_optimizer(spec, model, SGD, lr=lr)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmarks.config import LAM, LR, Options, Shape, regcore_spec
from benchmarks.timing import Case

NAME = "torch"


def setup(options: Options) -> None:
    torch.set_num_threads(options.threads)
    if torch.cuda.is_available():  # full float32 matmuls, as the conformance suite runs them
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def versions() -> dict[str, str]:
    out = {"torch": torch.__version__, "threads": str(torch.get_num_threads())}
    if torch.cuda.is_available():
        out["cuda"] = str(torch.version.cuda)
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def devices(options: Options) -> tuple[list[str], list[str]]:
    have = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    wanted = [("cuda" if d == "gpu" else d) for d in options.devices] or have
    return ([d for d in wanted if d in have],
            [f"torch: no device {d!r} here (have {', '.join(have)})"
             for d in wanted if d not in have])


def modes(options: Options) -> list[str]:
    return ["eager", "fused"]


def _sync(device: str):
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def release(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()


def bandwidth_case(device: str, nbytes: int) -> Case:
    buf = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    return Case("read", "torch.sum over a buffer", lambda: buf.sum(), _sync(device))


def model(shape: Shape, device: str, seed: int) -> nn.Sequential:
    """``layers`` ``Linear(width, width)``, ReLU between them; He-normal weights (activations keep
    their scale through deep stacks: no denormals on the CPU), zero biases."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i in range(shape.layers):
        linear = nn.Linear(shape.width, shape.width)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        mods.append(linear)
        if i < shape.layers - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).to(device)


def penalized(net: nn.Module, select: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(the parameters every idiom penalizes, the rest)."""
    chosen, rest = [], []
    for name, p in net.named_parameters():
        (chosen if select == "all" or name.endswith("weight") else rest).append(p)
    return chosen, rest


def _groups(chosen, rest, wd):
    return [{"params": chosen, "weight_decay": wd}] + (
        [{"params": rest, "weight_decay": 0.0}] if rest else [])


def step_cases(device: str, mode: str, shape: Shape, batch: int, options: Options) -> list[Case]:
    from regcore_adapters.torch.native import GradientPenalty, PenaltyLoss, build_optimizer

    net = model(shape, device, options.seed)
    chosen, rest = penalized(net, options.select)
    g = torch.Generator(device="cpu").manual_seed(options.seed + 1)
    x = torch.randn(batch, shape.width, generator=g).to(device)
    y = torch.randn(batch, shape.width, generator=g).to(device)
    mse = nn.MSELoss()
    s = regcore_spec(options.select)
    sync = _sync(device)

    def plain(opt, extra=None, after=None):
        def step():
            opt.zero_grad(set_to_none=True)
            loss = mse(net(x), y)
            if extra is not None:
                loss = loss + extra()
            loss.backward()
            if after is not None:
                after()
            opt.step()
        return step

    fused = {"fused": True} if mode == "fused" else {}

    def sgd(**kw: Any):
        return torch.optim.SGD(net.parameters(), lr=LR, **fused, **kw)

    penalty_loss = PenaltyLoss(s, net)
    grad_penalty = GradientPenalty(s, net)
    return [
        Case("none", "no penalty", plain(sgd()), sync),
        Case("loss_sum_sq", "Σp² in loss", plain(
            sgd(), lambda: LAM * sum(p.pow(2).sum() for p in chosen)), sync),
        Case("loss_foreach_norm", "foreach_norm² in loss", plain(
            sgd(), lambda: LAM * torch.stack(torch._foreach_norm(chosen)).pow(2).sum()), sync),
        Case("native_weight_decay", "SGD(weight_decay=2λ)", plain(
            torch.optim.SGD(_groups(chosen, rest, 2 * LAM), lr=LR, **fused)), sync),
        Case("regcore_penalty_loss", "regcore PenaltyLoss in loss",
             plain(sgd(), penalty_loss), sync),
        Case("regcore_gradient_penalty", "regcore GradientPenalty (no value)",
             plain(sgd(), after=grad_penalty), sync),
        Case("regcore_gradient_penalty_value", "regcore GradientPenalty(value=True)",
             plain(sgd(), after=lambda: grad_penalty(True)), sync),
        Case("regcore_build_optimizer", "regcore build_optimizer(SGD)",
             plain(build_optimizer(s, net, torch.optim.SGD, lr=LR, **fused)), sync),
    ]


def value_cases(device: str, mode: str, shape: Shape,
                options: Options) -> tuple[list[Case], int]:
    from regcore_adapters.torch.native import PenaltyLoss

    if mode == "fused":  # the optimizer is not involved: eager's value rows are the ones
        return [], 0
    net = model(shape, device, options.seed)
    chosen, _ = penalized(net, options.select)
    chosen = [p.detach() for p in chosen]
    penalty_loss = PenaltyLoss(regcore_spec(options.select), net)
    flat = torch.cat([p.reshape(-1) for p in chosen])
    sync = _sync(device)

    @torch.no_grad()
    def naive():
        return LAM * sum(p.pow(2).sum() for p in chosen)

    @torch.no_grad()
    def foreach():
        return LAM * torch.stack(torch._foreach_norm(chosen)).pow(2).sum()

    @torch.no_grad()
    def regcore_value():
        return penalty_loss()

    @torch.no_grad()
    def dot():
        return LAM * torch.dot(flat, flat)

    def value(fn):
        return lambda: float(fn())

    cases = [
        Case("naive", "Σ p.pow(2).sum() per tensor", naive, sync, value=value(naive)),
        Case("foreach", "torch._foreach_norm, squared, summed", foreach, sync,
             value=value(foreach)),
        Case("regcore_penalty_loss", "regcore PenaltyLoss() (no_grad)", regcore_value, sync,
             value=value(regcore_value)),
        Case("flat_dot", "one dot over a flat copy (reference, not a path)", dot, sync,
             value=value(dot)),
    ]
    return cases, sum(p.numel() * p.element_size() for p in chosen)
