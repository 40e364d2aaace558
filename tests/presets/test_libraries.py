"""regcore's presets against the libraries' own optimizer set-ups (``nox -s presets``): timm's
``create_optimizer_v2`` on a ResNet and a ViT, Hugging Face ``Trainer.create_optimizer`` on a
tiny BERT and a tiny GPT-2 (weights tied), all built from configs with random weights, nothing
downloaded. For each: the parameters the library decays are exactly the ones the preset selects
(name by name), and a few training steps with ``build_optimizer(preset, ...)`` end bit for bit
where the library's own optimizer ends.
"""

from __future__ import annotations

import copy
import inspect

import pytest

torch = pytest.importorskip("torch")

from regcore import presets  # noqa: E402
from regcore_adapters.torch import presets as torch_presets  # noqa: E402
from regcore_adapters.torch.modules import module_params  # noqa: E402
from regcore_adapters.torch.native import build_optimizer  # noqa: E402

RATE = 0.05
STEPS = 3


def _timm_models():
    timm = pytest.importorskip("timm")
    return {
        "resnet": lambda: timm.create_model("resnet10t", num_classes=4),
        "vit": lambda: timm.create_model("vit_tiny_patch16_224", img_size=32, depth=2,
                                         num_classes=4),
    }


def _hf_models():
    transformers = pytest.importorskip("transformers")
    bert = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=32,
                                   max_position_embeddings=16, hidden_dropout_prob=0.0,
                                   attention_probs_dropout_prob=0.0, num_labels=3)
    gpt2 = transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=16,
                                   resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return {
        "bert": lambda: transformers.BertForSequenceClassification(bert),
        "gpt2": lambda: transformers.GPT2LMHeadModel(gpt2),
    }


def _decayed(model, optimizer) -> dict[str, float]:
    """Each trained parameter's ``weight_decay`` in ``optimizer``, by ``model``'s names."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: group["weight_decay"] for group in optimizer.param_groups
            for p in group["params"]}


def _preset_decay(spec, model) -> dict[str, float]:
    plan = spec.resolve([p.info for p in module_params(model)])
    return {n: plan.decay.get(n, 0.0) for n, p in model.named_parameters() if p.requires_grad}


def _loss(name, model, seed):
    g = torch.Generator().manual_seed(seed)
    if name in ("resnet", "vit"):
        return model(torch.randn(2, 3, 32, 32, generator=g)).square().mean()
    ids = torch.randint(0, 64, (2, 8), generator=g)
    if name == "bert":
        return model(input_ids=ids, labels=torch.tensor([0, 2])).loss
    return model(input_ids=ids, labels=ids).loss


def _train(name, model, optimizer):
    model.train()
    for step in range(STEPS):
        optimizer.zero_grad()
        _loss(name, model, step).backward()
        optimizer.step()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _check(name, make, library_optimizer, spec_for):
    """The library's optimizer on one copy, ``build_optimizer(preset)`` with the same settings
    on another: the same decay per parameter, and the same weights after training."""
    torch.manual_seed(0)
    theirs = make()
    ours = copy.deepcopy(theirs)
    lib = library_optimizer(theirs)
    spec = spec_for(ours)
    decayed = _decayed(theirs, lib)
    assert _preset_decay(spec, ours) == decayed
    assert {RATE, 0.0} == set(decayed.values())  # both groups are there: a real split
    accepted = inspect.signature(type(lib)).parameters  # AdamW's defaults hold more
    settings = {k: v for k, v in lib.defaults.items() if k in accepted and k != "weight_decay"}
    mine = build_optimizer(spec, ours, type(lib), **settings)
    after_theirs, after_ours = _train(name, theirs, lib), _train(name, ours, mine)
    for n, w in after_theirs.items():
        assert torch.equal(w, after_ours[n]), n


@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_timm_param_groups_weight_decay(name):
    from timm.optim import create_optimizer_v2

    make = _timm_models()[name]
    _check(name, make, lambda m: create_optimizer_v2(m, "adamw", lr=1e-2, weight_decay=RATE),
           lambda m: presets.timm(RATE, getattr(m, "no_weight_decay", set)()))


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_hugging_face_trainer(name, tmp_path):
    from transformers import Trainer, TrainingArguments

    def trainer_optimizer(model):
        args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-2, weight_decay=RATE,
                                 report_to="none", use_cpu=True)
        return Trainer(model=model, args=args).create_optimizer()

    _check(name, _hf_models()[name], trainer_optimizer,
           lambda m: torch_presets.hf_trainer(m, RATE))


@pytest.mark.parametrize("name", ["bert", "gpt2", "resnet", "vit"])
def test_trainer_decay_names_against_its_name_rule(name, tmp_path):
    """The name half of the Trainer's rule alone (:func:`regcore.presets.hf_trainer_names`)
    equals ``get_decay_parameter_names`` exactly where no ``nn.LayerNorm`` is named otherwise:
    on these models, the ones whose norms the patterns catch."""
    from transformers import Trainer

    models = {**_hf_models(), **_timm_models()}
    model = models[name]()
    expected = {n for n in Trainer.get_decay_parameter_names(None, model)}
    expected &= {n for n, _ in model.named_parameters()}  # a tied weight is listed by both owners
    decayed = {n for n, r in _preset_decay(presets.hf_trainer_names(RATE), model).items() if r}
    inside = set(torch_presets._inside(model, (torch.nn.LayerNorm,)))
    assert decayed - inside == expected
