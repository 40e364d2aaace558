"""Optional capabilities of a backend, each a small abstract class the backend class inherits
beside :class:`regcore.Backend` when it offers it::

    class MyBackend(Backend, Harness, NativeTranslations): ...

A backend that inherits a capability implements all of its methods (they are abstract, so a
missing one is a :class:`TypeError` when the class is instantiated). The suite and the CLI find
them with ``isinstance(backend, Harness)``; :meth:`regcore.Backend.capabilities` lists them.

Each capability checks its methods' arguments once, for every backend (as :class:`regcore.Backend`
does, by wrapping the subclass's methods when the class is created): a translation name not
declared is an :class:`UnknownTranslationError` (a :class:`regcore.SpecError`) naming the declared
ones; parameters are checked by :func:`regcore.backend.check_arrays` and
:func:`regcore.backend.check_shapes` against the plan (or the model's parameters) before the
method runs.

* :class:`Harness`: the scenario harness, :meth:`~Harness.loss_and_grads` and
  :meth:`~Harness.train` on the networks of :class:`regcore.harness.ModelSpec` and
  :class:`regcore.network.Network` (conv and sequence stacks);
* :class:`ProximalTraining`: :meth:`~ProximalTraining.proximal_train` (ISTA);
* :class:`NativeTranslations`: the spec applied through the framework's own idioms
  (:attr:`~NativeTranslations.native_translations`);
* :class:`DataParallel`: native training over several replicas;
* :class:`SnippetRunner`: runs the code this backend's exporter writes.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from regcore.backend import CAPABILITY_OF, Backend, _wrap, check_arrays, check_shapes
from regcore.errors import SpecError, UnsupportedError
from regcore.harness import ModelSpec, Optimizer
from regcore.network import Network
from regcore.spec import Plan, Spec

T = TypeVar("T")
Model = ModelSpec | Network
"""A scenario model: a dense :class:`~regcore.harness.ModelSpec` or a conv or sequence
:class:`~regcore.network.Network` (data-parallel training takes dense ones only)."""


class UnknownTranslationError(SpecError):
    """A native or data-parallel translation name the backend does not declare."""


class Capability(abc.ABC):  # noqa: B024 (its subclasses declare the abstract methods)
    """Base of the capability classes: wraps a backend's implementations of :attr:`checks`."""

    #: Class attributes the capability declares (listed by ``Backend.capabilities()``).
    declared: ClassVar[tuple[str, ...]] = ()
    #: Per method, the check its implementations run first (``check(self, *args, **kwargs)``).
    checks: ClassVar[dict[str, Callable[..., None]]] = {}
    #: True on the capability classes themselves (in their own ``__dict__``), which is what
    #: ``Backend.capabilities()`` looks for in a backend's MRO.
    _defines_capability: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if Capability in cls.__bases__:  # a capability itself (Harness...), not a backend
            cls._defines_capability = True  # what Backend.capabilities() looks for
            CAPABILITY_OF.update(dict.fromkeys(cls.checks, cls.__name__))
            return
        for capability in cls.__mro__:
            if vars(capability).get("_defines_capability"):
                checks: dict[str, Callable[..., None]] = vars(capability)["checks"]
                for method, check in checks.items():
                    _renamed_parameter(cls, method)
                    _wrap(cls, method, check)


def _renamed_parameter(cls: type, method: str) -> None:
    fn = cls.__dict__.get(method)
    if not callable(fn):
        return
    params = list(inspect.signature(fn).parameters)
    if len(params) > 1 and params[1] == "path":
        raise TypeError(f"{cls.__qualname__}.{method}(path, ...): the parameter is renamed to "
                        "translation (a native translation's name)")


def _params(self: Any, params: Mapping[str, Any], infos: Any, complete: bool = True) -> None:
    check_arrays(self.name, params, type(self).array_types)
    check_shapes(self.name, infos, params, complete=complete)


def lookup(backend: str, table: Mapping[str, T], translation: str, declared: str) -> T:
    """``table[translation]``, or an :class:`UnknownTranslationError` naming the translations
    ``table`` holds (``declared``: the attribute that lists them, for the message). Backends
    that dispatch on a table of translations use it where they are called past the check of the
    capability class (a module's own functions)."""
    if translation not in table:
        raise UnknownTranslationError(
            f"{backend}: unknown translation {translation!r}; {declared} declare"
            f"{'' if ' + ' in declared else 's'} {', '.join(map(repr, table)) or 'none'}")
    return table[translation]


def _translation(self: Any, translation: str, *declared: str) -> None:
    names = dict.fromkeys(n for attr in declared for n in getattr(type(self), attr))
    lookup(self.name, names, translation, " + ".join(declared))


def _harness_args(self: Any, model: Model, plan: Plan, params: Mapping[str, Any],
                  *_: Any, **__: Any) -> None:
    _params(self, params, plan)


class Harness(Capability):
    """The scenario harness: data loss plus penalty on :class:`~regcore.harness.ModelSpec`'s
    networks, and full-batch training with :class:`~regcore.harness.Optimizer`."""

    checks = {"loss_and_grads": _harness_args, "train": _harness_args}

    @abc.abstractmethod
    def loss_and_grads(
        self, model: Model, plan: Plan, params: Mapping[str, Any], x: Any, y: Any
    ) -> tuple[Any, dict[str, Any]]:
        """Data loss plus penalty on ``(x, y)``, and its gradient for every parameter."""

    @abc.abstractmethod
    def train(
        self, model: Model, plan: Plan, params: Mapping[str, Any], x: Any, y: Any,
        *, optimizer: Optimizer, steps: int,
    ) -> dict[str, Any]:
        """Parameters after ``steps`` full-batch steps of ``optimizer`` on
        :meth:`loss_and_grads`, with the plan's decoupled decay ``p ← p − lr·rate·p`` applied
        before each update (gradients taken at the parameters before the decay, as AdamW).
        Raise :class:`regcore.UnsupportedError` for an optimizer the backend does not offer."""


class ProximalTraining(Capability):
    """Proximal gradient (ISTA) training, for L1, elastic-net and group-lasso terms that end at
    exact zeros (a regularization path's coefficient paths rely on it)."""

    checks = {"proximal_train": _harness_args}

    @abc.abstractmethod
    def proximal_train(
        self, model: Model, plan: Plan, params: Mapping[str, Any], x: Any, y: Any,
        *, lr: float, steps: int,
    ) -> dict[str, Any]:
        """Parameters after ``steps`` full-batch proximal gradient steps of size ``lr``, as
        :mod:`regcore.proximal` defines them: with ``smooth, ops = regcore.proximal.split(plan)``,
        each step decays (``p ← p − lr·rate·p``), takes a plain SGD step on the data loss plus
        ``smooth``'s penalty at the parameters before the decay, then applies
        :func:`regcore.proximal.merged_shrinks` ``(ops)`` in order with step ``lr``."""


def _native_train_args(self: Any, translation: str, model: Model, spec: Spec,
                       params: Mapping[str, Any], *_: Any, **__: Any) -> None:
    _translation(self, translation, "native_translations")
    _params(self, params, model.params())


def _native_penalty_args(self: Any, translation: str, model: Model, spec: Spec,
                         params: Mapping[str, Any]) -> None:
    _translation(self, translation, "native_penalty_translations")
    _params(self, params, model.params())


def _native_plan_args(self: Any, translation: str, model: Model, spec: Spec) -> None:
    _translation(self, translation, "native_translations", "native_penalty_translations")


class NativeTranslations(Capability):
    """The spec applied through the framework's own idioms (torch ``weight_decay`` param groups,
    Keras regularizers...) on the framework's own model object built from a
    :class:`~regcore.harness.ModelSpec`. Each translation has a name; the methods take it first.
    """

    #: Translations :meth:`native_train` trains through.
    native_translations: ClassVar[tuple[str, ...]] = ()
    #: Translations :meth:`native_penalty` evaluates the penalty through.
    native_penalty_translations: ClassVar[tuple[str, ...]] = ()
    declared = ("native_translations", "native_penalty_translations")
    checks = {"native_train": _native_train_args, "native_penalty": _native_penalty_args,
              "native_plan": _native_plan_args}

    @abc.abstractmethod
    def native_train(
        self, translation: str, model: Model, spec: Spec, params: Mapping[str, Any],
        x: Any, y: Any, *, optimizer: Optimizer, steps: int,
    ) -> dict[str, Any]:
        """:meth:`Harness.train`, but with ``spec`` applied through ``translation`` (one of
        :attr:`native_translations`). Returns the parameters under their canonical names and
        layout. Raise :class:`regcore.SpecError` where the translation cannot express ``spec``,
        :class:`regcore.UnsupportedError` where it does not offer ``optimizer`` (the suite skips
        the check with the message)."""

    @abc.abstractmethod
    def native_penalty(
        self, translation: str, model: Model, spec: Spec, params: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """:meth:`regcore.Backend.penalty`, but through ``translation`` (one of
        :attr:`native_penalty_translations`) on the model built from ``model`` with ``params``;
        the gradient keyed by canonical name, in canonical layout."""

    @abc.abstractmethod
    def native_plan(self, translation: str, model: Model, spec: Spec) -> Plan:
        """The plan ``translation`` resolves ``spec`` to on the framework's model built from
        ``model``, by the resolution its training and penalty use, with the parameters renamed
        to their canonical names (shapes in canonical layout, roles as the translation derived
        them). The suite requires it to equal ``spec.resolve(model.params(),
        model.layer_names())``: a translation
        that sees other roles, names or shapes quietly runs another spec. Raise
        :class:`regcore.SpecError` where that resolution fails."""


def _distributed_args(self: Any, translation: str, model: ModelSpec, spec: Spec,
                      params: Mapping[str, Any], *_: Any, world_size: int, **__: Any) -> None:
    _translation(self, translation, "distributed_translations")
    if world_size not in type(self).distributed_world_sizes:
        raise SpecError(f"{self.name}: world_size {world_size!r}; distributed_world_sizes "
                        f"declares {', '.join(map(str, type(self).distributed_world_sizes))}")
    _params(self, params, model.params())


class DataParallel(Capability):
    """Native training data-parallel over several replicas."""

    #: Translations :meth:`distributed_train` trains data-parallel through.
    distributed_translations: ClassVar[tuple[str, ...]] = ()
    #: Replica counts :meth:`distributed_train` runs (the suite runs each).
    distributed_world_sizes: ClassVar[tuple[int, ...]] = ()
    declared = ("distributed_translations", "distributed_world_sizes")
    checks = {"distributed_train": _distributed_args,
              "distributed_train_many": _distributed_args,
              "distributed_loss_and_grads": _distributed_args}

    @abc.abstractmethod
    def distributed_train(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, Any],
        x: Any, y: Any, *, optimizer: Optimizer, steps: int, world_size: int,
    ) -> dict[str, Any]:
        """:meth:`NativeTranslations.native_train` data-parallel over ``world_size`` replicas
        (one of :attr:`distributed_world_sizes`): ``(x, y)`` is the global batch, split across
        the replicas; each step must equal one full-batch step of the single-process reference,
        so the penalty counts once per global step. ``translation`` is one of
        :attr:`distributed_translations`. Returns the parameters after ``steps`` (canonical
        names and layout), after checking that every replica holds the same ones. A replica
        that fails or hangs is a :class:`RuntimeError` within a bounded time, never a hang."""

    def distributed_train_many(
        self, translation: str, model: ModelSpec, specs: Mapping[str, Spec],
        params: Mapping[str, Any], x: Any, y: Any, *, optimizer: Optimizer, steps: int,
        world_size: int,
    ) -> dict[str, dict[str, Any] | Exception]:
        """:meth:`distributed_train` for each spec of ``specs`` from the same parameters and
        batch: per spec name, the parameters after ``steps``, or the :class:`regcore.SpecError`
        or :class:`regcore.UnsupportedError` the translation refused that spec with.
        The suite calls this once per scenario, translation, replica count, dtype and optimizer.
        By default one :meth:`distributed_train` call per spec; a backend whose steps cost mostly
        the collectives' latency overrides it to train the specs side by side."""
        out: dict[str, dict[str, Any] | Exception] = {}
        for name, spec in specs.items():
            try:
                out[name] = self.distributed_train(translation, model, spec, params, x, y,
                                                   optimizer=optimizer, steps=steps,
                                                   world_size=world_size)
            except (SpecError, UnsupportedError) as exc:
                out[name] = exc
        return out

    @abc.abstractmethod
    def distributed_loss_and_grads(
        self, translation: str, model: ModelSpec, spec: Spec, params: Mapping[str, Any],
        x: Any, y: Any, *, world_size: int,
    ) -> tuple[Any, dict[str, Any]]:
        """One data-parallel forward and backward of :meth:`distributed_train`'s
        ``translation``: the global loss (data loss over the whole batch plus the penalty) and
        the gradient the optimizer sees on every replica (canonical). Raise
        :class:`regcore.UnsupportedError` for a translation whose penalty is applied by the
        optimizer rather than through the loss or the gradient."""


def _snippet_args(self: Any, code: str, model: Model, params: Mapping[str, Any],
                  *_: Any, **__: Any) -> None:
    _params(self, params, model.params())


class SnippetRunner(Capability):
    """Runs the code this backend's exporter (entry point group ``regcore.exporters``, same
    name) writes for a spec, on the framework's own model object built from a
    :class:`~regcore.harness.ModelSpec`."""

    checks = {"exported_penalty": _snippet_args, "exported_decay": _snippet_args}

    @abc.abstractmethod
    def exported_penalty(
        self, code: str, model: Model, params: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Run ``code`` in a fresh namespace, call its ``regularization`` on the model built
        from ``model`` with ``params``, differentiate natively, and return the value and the
        gradient keyed by canonical name, in canonical layout."""

    @abc.abstractmethod
    def exported_decay(
        self, code: str, model: Model, params: Mapping[str, Any], lr: float
    ) -> dict[str, Any]:
        """As :meth:`exported_penalty`, but call the snippet's decoupled-decay function once
        with learning rate ``lr`` and return the parameters after it by canonical name, in
        canonical layout (the caller's ``params`` untouched)."""


CAPABILITIES: tuple[type[Capability], ...] = (
    Harness, ProximalTraining, NativeTranslations, DataParallel, SnippetRunner)
"""Every capability, in the order :meth:`regcore.Backend.capabilities` lists them."""


def missing(backend: Backend, capability: type[Capability]) -> str | None:
    """``None`` where ``backend`` offers ``capability``, else why not (naming the backend and
    the capability: the reason the suite gives for a skip)."""
    if isinstance(backend, capability):
        return None
    return (f"{backend.name}: does not offer the {capability.__name__} capability "
            f"(regcore.capabilities.{capability.__name__})")
