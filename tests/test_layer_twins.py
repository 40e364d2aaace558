"""Real layer types across frameworks: a torch layer and its Keras twin, given the same weights,
compute the same function and get the same penalty for every term, the layout-dependent ones
(group lasso along each axis, orthogonal rows and columns) included, or both refuse it (a conv
kernel has no orthogonal form; attention projections and Keras's depthwise kernels have no
canonical layout).

"The same weights" is written out here per layer from each framework's documented storage layout
(torch conv ``(out, in, *k)`` against Keras ``(*k, in, out)``, depthwise channel ``c·m + j``,
LSTM gates ``i, f, g, o`` in both, GRU ``r, z, n`` against Keras ``z, r, h``...), and proven by
the forward pass: both layers map the same input to the same output. The penalties go through
each adapter's own path (torch ``PenaltyLoss``, Keras ``penalty``) and through both exported
snippets, so a wrong canonical view in either shows as a different number. float64 throughout:
the penalties are sums of at most a few hundred terms, so agreement to ``1e-12`` relative (a few
hundred ulps) is the derived bound, not a tuned one. Runs in ``nox -s path``, the session with
both frameworks.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from torch import nn  # noqa: E402

from regcore import (  # noqa: E402
    L1,
    L2,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    Rule,
    Select,
    Spec,
    SpecError,
)
from regcore_adapters.tf import keras_native  # noqa: E402
from regcore_adapters.tf.export import export as export_keras  # noqa: E402
from regcore_adapters.torch.export import export  # noqa: E402
from regcore_adapters.torch.native import PenaltyLoss  # noqa: E402

RTOL = 1e-12
ALL, WEIGHTS = Select(), Select(roles=("weight",))


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def _n(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _gates(w: torch.Tensor, order) -> torch.Tensor:
    """``w``'s gate blocks along axis 0 in ``order`` (indices of torch's blocks)."""
    return torch.cat([w.chunk(len(order))[i] for i in order])


GRU_TO_KERAS = (1, 0, 2)  # torch r, z, n -> Keras z, r, h


def _set(k, arrays):
    """Keras layer ``k``'s trainable variables, in order, to ``arrays``."""
    assert len(k.trainable_weights) == len(arrays)
    for variable, array in zip(k.trainable_weights, arrays, strict=True):
        variable.assign(array)


def _copy_conv(t, k):
    _set(k, [_n(t.weight.permute(*range(2, t.weight.ndim), 1, 0)), _n(t.bias)])


def _copy_depthwise(t, k):
    c = t.groups
    m = t.out_channels // c
    kernel = t.weight.reshape(c, m, *t.kernel_size).permute(2, 3, 0, 1)  # out channel c·m + j
    _set(k, [_n(kernel), _n(t.bias)])


def _copy_same(t, k):
    _set(k, [_n(p) for p in t.parameters()])


def _copy_recurrent(order):
    def copy(t, k):
        if order != GRU_TO_KERAS:  # Keras has one bias: torch's hidden-to-hidden one is zero
            with torch.no_grad():
                t.bias_hh_l0.zero_()
        w_ih, w_hh = _gates(t.weight_ih_l0, order), _gates(t.weight_hh_l0, order)
        if order == GRU_TO_KERAS:  # reset_after=True: input and recurrent biases, stacked
            bias = torch.stack([_gates(t.bias_ih_l0, order), _gates(t.bias_hh_l0, order)])
        else:
            bias = _gates(t.bias_ih_l0, order)
        _set(k, [_n(w_ih.T), _n(w_hh.T), _n(bias)])
    return copy


def _copy_mha(t, k):
    e, h = t.embed_dim, t.num_heads
    q, kk, v = t.in_proj_weight.chunk(3)
    qb, kb, vb = t.in_proj_bias.chunk(3)
    weights = []
    for w, b in ((q, qb), (kk, kb), (v, vb)):
        weights += [_n(w.T.reshape(e, h, e // h)), _n(b.reshape(h, e // h))]
    weights += [_n(t.out_proj.weight.T.reshape(h, e // h, e)), _n(t.out_proj.bias)]
    _set(k, weights)


def _channels_last(x):
    return x.movedim(1, -1)


def _mha_torch(layer, x):
    return layer(x, x, x, need_weights=False)[0]


# name: (torch layer, Keras twin, copy, torch input, torch input -> Keras input, torch call,
#        torch output -> Keras layout, layout-dependent terms comparable)
TWINS = {
    "conv1d": (lambda: nn.Conv1d(3, 4, 3), lambda: keras.layers.Conv1D(4, 3), _copy_conv,
               (2, 3, 7), _channels_last, None, _channels_last),
    "conv2d": (lambda: nn.Conv2d(3, 4, (2, 3)), lambda: keras.layers.Conv2D(4, (2, 3)),
               _copy_conv, (2, 3, 6, 5), _channels_last, None, _channels_last),
    "grouped_conv2d": (lambda: nn.Conv2d(4, 6, 3, groups=2),
                       lambda: keras.layers.Conv2D(6, 3, groups=2), _copy_conv, (2, 4, 5, 5),
                       _channels_last, None, _channels_last),
    "depthwise_conv2d": (lambda: nn.Conv2d(3, 6, 3, groups=3),
                         lambda: keras.layers.Conv2D(6, 3, groups=3), _copy_conv, (2, 3, 5, 5),
                         _channels_last, None, _channels_last),
    "keras_depthwise_conv2d": (lambda: nn.Conv2d(3, 6, 3, groups=3),
                               lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
                               _copy_depthwise, (2, 3, 5, 5), _channels_last, None,
                               _channels_last),
    "embedding": (lambda: nn.Embedding(10, 4), lambda: keras.layers.Embedding(10, 4),
                  _copy_same, "ids", None, None, None),
    "layer_norm": (lambda: nn.LayerNorm(4), lambda: keras.layers.LayerNormalization(
        epsilon=1e-5), _copy_same, (3, 4), None, None, None),
    "batch_norm": (lambda: nn.BatchNorm1d(4).eval(), lambda: keras.layers.BatchNormalization(
        epsilon=1e-5), _copy_same, (3, 4), None, None, None),
    "group_norm": (lambda: nn.GroupNorm(2, 4), lambda: keras.layers.GroupNormalization(
        2, epsilon=1e-5), _copy_same, (3, 4, 5), _channels_last, None, _channels_last),
    "rms_norm": (lambda: nn.RMSNorm(4, eps=1e-6), lambda: keras.layers.RMSNormalization(
        epsilon=1e-6), _copy_same, (3, 4), None, None, None),
    "lstm": (lambda: nn.LSTM(3, 5, batch_first=True),
             lambda: keras.layers.LSTM(5, return_sequences=True), _copy_recurrent((0, 1, 2, 3)),
             (2, 4, 3), None, lambda m, x: m(x)[0], None),
    "gru": (lambda: nn.GRU(3, 5, batch_first=True),
            lambda: keras.layers.GRU(5, return_sequences=True), _copy_recurrent(GRU_TO_KERAS),
            (2, 4, 3), None, lambda m, x: m(x)[0], None),
    "simple_rnn": (lambda: nn.RNN(3, 5, batch_first=True),
                   lambda: keras.layers.SimpleRNN(5, return_sequences=True),
                   _copy_recurrent((0,)), (2, 4, 3), None, lambda m, x: m(x)[0], None),
    "multi_head_attention": (lambda: nn.MultiheadAttention(8, 2, batch_first=True),
                             lambda: keras.layers.MultiHeadAttention(2, 4), _copy_mha, (2, 3, 8),
                             None, _mha_torch, None),
}
# Where a layout has no canonical form: multi-head attention (torch's one fused (3E, E)
# in_proj_weight is Keras's three (E, heads, head_dim) kernels; Keras's output kernel is
# (heads, head_dim, E)) is refused on both sides; Keras's DepthwiseConv2D (*k, C, m) spreads each
# output channel over two axes and is refused there, while torch's Conv2d(groups=C) is an
# ordinary grouped conv (*k, 1, C·m), Keras's Conv2D(groups=C) (the depthwise_conv2d twin).
# Elementwise terms agree on all of them.
KERAS_REFUSES_ALONE = {"keras_depthwise_conv2d"}

SPECS = {
    "l2": Spec([Rule(L2(0.3, convention="sum"), ALL)]),
    "l1": Spec([Rule(L1(0.2, convention="sum"), ALL)]),
    "elastic_net": Spec([Rule(ElasticNet(0.1, 0.4, convention="sum"), ALL)]),
    "group_lasso_first_axis": Spec([Rule(GroupLasso(0.5, axis=0, convention="sum"), WEIGHTS)]),
    "group_lasso_last_axis": Spec([Rule(GroupLasso(0.5, axis=-1, convention="sum"), WEIGHTS)]),
    "orthogonal_rows": Spec([Rule(Orthogonal(0.7, mode="rows", convention="sum"), WEIGHTS)]),
    "orthogonal_columns": Spec([Rule(Orthogonal(0.7, mode="columns", convention="sum"),
                                     WEIGHTS)]),
}


@pytest.fixture(autouse=True)
def _float64():
    """Keras layers built here compute in float64 (the global dtype policy, which another test
    in the same process may have set, decides a layer's dtype, not floatx)."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy(policy)


def _twins(name):
    make_torch, make_keras, copy, shape, to_keras, call, out_to_keras = TWINS[name]
    torch.manual_seed(0)
    t = make_torch().double()
    k = make_keras()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 10, (2, 5), generator=g) if shape == "ids" else \
        torch.randn(*shape, generator=g, dtype=torch.float64)
    kx = _n(to_keras(x) if to_keras else x)
    if name == "multi_head_attention":
        k(kx, kx)
    else:
        k(kx)
    with torch.no_grad():  # random norm scales and shifts, not their ones and zeros
        for p in t.parameters():
            if p.ndim == 1:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    copy(t, k)
    return t, k, x, kx, call, out_to_keras


@pytest.mark.parametrize("name", TWINS)
def test_twins_compute_the_same_function(name):
    t, k, x, kx, call, out_to_keras = _twins(name)
    with torch.no_grad():
        out = call(t, x) if call else t(x)
    out = _n(out_to_keras(out) if out_to_keras else out)
    theirs = k(kx, kx) if name == "multi_head_attention" else k(kx, training=False)
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(theirs), rtol=1e-10, atol=1e-12)


def _penalty(run):
    """The penalty, or why it was refused: ``layout`` (no canonical layout), ``shape`` (a term
    undefined for the parameter's shape), else the message."""
    try:
        value = run()
        return float(value.detach() if isinstance(value, torch.Tensor) else value)
    except (SpecError, ValueError) as exc:  # the exported snippets raise ValueError
        text = str(exc)
        return ("refused: layout" if "no canonical" in text else
                "refused: shape" if "needs a 2-D parameter" in text else
                "refused: selects nothing" if "selects no parameter" in text else
                f"refused: {text}")


@functools.cache
def _exported(framework: str, spec: str):
    """The torch or Keras exporter's snippet for ``SPECS[spec]``: its
    ``regularization(model)``."""
    namespace: dict = {}
    text = (export if framework == "torch" else export_keras)(SPECS[spec])
    exec(compile(text, f"<{framework} export of {spec}>", "exec"), namespace)
    return namespace["regularization"]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("name", TWINS)
def test_twins_get_the_same_penalty(name, spec):
    t, k, *_ = _twins(name)
    ours = _penalty(lambda: PenaltyLoss(SPECS[spec], t)())
    exported = _penalty(lambda: _exported("torch", spec)(t))
    theirs = _penalty(lambda: keras_native.penalty(SPECS[spec], k)())
    exported_keras = _penalty(lambda: _exported("keras", spec)(k))
    if name in KERAS_REFUSES_ALONE and SPECS[spec].penalties[0].term.layout_dependent:
        assert theirs == exported_keras == "refused: layout"
        # torch: an ordinary grouped conv (orthogonal refused there for its 4 axes)
        assert ours == exported == "refused: shape" if isinstance(ours, str) else \
            ours == pytest.approx(exported, rel=RTOL, abs=0)
    elif isinstance(theirs, str):  # orthogonal on a conv kernel; attention projections
        assert ours == exported == exported_keras == theirs, (ours, exported, exported_keras)
    else:
        assert theirs > 0
        for value in (ours, exported, exported_keras):
            assert value == pytest.approx(theirs, rel=RTOL, abs=0)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("name", TWINS)
def test_twins_get_the_same_gradients(name, spec):
    """The penalty's gradient: torch's (autograd through ``PenaltyLoss``), carried into Keras's
    layout by the same weight correspondence, equals Keras's (``tf.GradientTape`` on
    ``penalty``), parameter by parameter. 1e-10 relative: float64 gradients of the same sums and
    Gram matrices (at most 24 columns) taken in two operation orders."""
    tf = pytest.importorskip("tensorflow")
    t, k, *_ = _twins(name)
    try:
        PenaltyLoss(SPECS[spec], t)().backward()
        run = keras_native.penalty(SPECS[spec], k)
    except SpecError as exc:
        pytest.skip(f"refused, as test_twins_get_the_same_penalty checks: {exc}"[:120])
    with tf.GradientTape() as tape:
        value = run()
    theirs = [np.zeros(v.shape) if g is None else np.asarray(g)
              for v, g in zip(k.trainable_weights, tape.gradient(value, k.trainable_weights),
                              strict=True)]
    carried = copy.deepcopy(t)  # torch's gradients as if they were weights, carried over
    with torch.no_grad():
        for p, grad_holder in zip(t.parameters(), carried.parameters(), strict=True):
            grad_holder.copy_(torch.zeros_like(p) if p.grad is None else p.grad)
    TWINS[name][2](carried, k)
    for variable, expected in zip(k.trainable_weights, theirs, strict=True):
        ours = keras.ops.convert_to_numpy(variable)
        scale = max(np.abs(expected).max(), 1.0)
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-14 * scale,
                                   err_msg=variable.path)
