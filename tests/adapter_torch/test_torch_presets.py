"""regcore_adapters.torch.presets: the recipes that decide by module class, on a model with a
norm of each kind (the libraries' own groupings are matched in tests/presets/, where timm and
transformers are installed; torchvision's ``set_weight_decay`` lives in its reference scripts,
not in the package, so its rule is checked here as its source states it)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from regcore_adapters.torch import presets  # noqa: E402
from regcore_adapters.torch.modules import module_params  # noqa: E402
from regcore_adapters.torch.native import build_optimizer  # noqa: E402


def _model() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(8),
                          nn.LayerNorm(8), nn.Linear(8, 8), nn.GroupNorm(2, 8), nn.Linear(8, 2))
    model(torch.zeros(1, 3, 5, 5))
    model[7].weight.requires_grad_(False)  # frozen: in no group
    return model


def _rates(spec, model) -> dict[str, float]:
    plan = spec.resolve([p.info for p in module_params(model)])
    rates = {n: plan.decay.get(n, 0.0) for n, p in model.named_parameters() if p.requires_grad}
    for a in plan.penalties:  # coupled form: weight_decay = 2·(sum-form coefficient)
        rates[a.param] = 2 * a.term.scaled()["coef"]
    return rates


def test_hf_trainer_leaves_out_layernorm_by_class_not_other_norms():
    rates = _rates(presets.hf_trainer(_model(), 0.1), _model())
    assert {n for n, r in rates.items() if r} == {"0.weight", "1.weight", "3.weight", "5.weight",
                                                  "6.weight"}


def test_torchvision_norms_custom_keys_and_the_rest():
    model = _model()
    spec = presets.torchvision(model, 1e-4, norm_weight_decay=0.0,
                               custom_keys_weight_decay=[("bias", 0.0), ("5.weight", 1e-3)])
    rates = _rates(spec, model)
    assert rates == {"0.weight": 1e-4, "0.bias": 0.0, "1.weight": 0.0, "1.bias": 0.0,
                     "3.weight": 1e-4, "3.bias": 0.0, "4.weight": 0.0, "4.bias": 0.0,
                     "5.weight": 1e-3, "5.bias": 0.0, "6.weight": 0.0, "6.bias": 0.0,
                     "7.bias": 0.0}
    # without norm_weight_decay, a norm layer's parameters are "other": decayed
    rates = _rates(presets.torchvision(model, 1e-4), model)
    assert {n for n, r in rates.items() if r == 1e-4} == set(rates)
    groups = build_optimizer(spec, model, torch.optim.SGD, lr=0.1, momentum=0.9).param_groups
    assert sorted(g["weight_decay"] for g in groups) == pytest.approx([0.0, 1e-4, 1e-3])


def test_readme_presets_example():
    """README "Presets": the hand-written rule decays the LayerNorm's scale, timm's does not."""
    from tests.test_docs import doc_blocks, run_python

    (block,) = doc_blocks("README.md", "test_readme_presets_example")
    namespace, printed = run_python(block)
    assert printed == ["[('1.weight', 'only in A')]"]
    groups = namespace["timm_like"].param_groups
    assert [(len(g["params"]), g["weight_decay"]) for g in groups] == [(2, 0.05), (4, 0.0)]
