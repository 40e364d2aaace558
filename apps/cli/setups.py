"""Training setups named on the command line, read into specs (``regcore audit``, ``regcore
diff``): ``FRAMEWORK:MODULE:FUNCTION``, where ``FUNCTION()`` returns ``(model, optimizer)`` —
torch: also ``(model, optimizer, penalty_loss)``; keras: the optimizer may be ``None``; optax:
``(params, tx)``, a params pytree and an optax transformation.

The adapters read them (``regcore_adapters.<adapter>.reading``, the JAX package's
``regcore_jax.reading``: ``read_setup`` and ``param_infos``), imported only when asked for."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regcore.reading import Reading
from regcore.selection import ParamInfo
from regcore.spec import Plan
from regcore_apps.cli.common import CliError, load_spec

#: Framework name on the command line -> the adapter module that reads its setups.
READERS = {"torch": "regcore_adapters.torch.reading", "keras": "regcore_adapters.keras.reading",
           "optax": "regcore_jax.reading"}


@dataclass(frozen=True)
class Setup:
    """A setup read from the command line: where from, its parameters, and what it applies."""

    source: str
    params: list[ParamInfo]
    reading: Reading
    layers: list[str] = field(default_factory=list)  # what activity items may name (the reader's
    # layer_names; none for optax)

    def plan(self, spec_file: Path | None = None) -> Plan:
        """What the setup applies (or the spec in ``spec_file``, on this setup's parameters and
        layers)."""
        spec = load_spec(spec_file) if spec_file is not None else self.reading.spec
        return spec.resolve(self.params, self.layers)


def load_setup(source: str) -> Setup:
    """``FRAMEWORK:MODULE:FUNCTION`` called and read; :class:`CliError` naming what failed."""
    framework, _, target = source.partition(":")
    module_name, _, function = target.partition(":")
    if framework not in READERS or not module_name or not function:
        raise CliError(f"{source!r}: expected FRAMEWORK:MODULE:FUNCTION with FRAMEWORK one of "
                       f"{', '.join(READERS)} (e.g. torch:train:make_setup)")
    try:
        reader = importlib.import_module(READERS[framework])
    except ImportError as exc:
        raise CliError(f"{source}: reading a {framework} setup needs {exc.name or exc}, which "
                       "is not installed") from None
    if "" not in sys.path:  # MODULE is the user's, from the current directory
        sys.path.insert(0, "")
    try:
        made = getattr(importlib.import_module(module_name), function)()
    except Exception as exc:  # the user's code: any failure is bad input, in one line
        raise CliError(f"{source}: {type(exc).__name__}: {exc}") from None
    parts: tuple[Any, ...] = made if isinstance(made, tuple) else (made,)
    if not 1 <= len(parts) <= 3:
        raise CliError(f"{source}: expected (model, optimizer[, penalty]), got {len(parts)} "
                       "values")
    try:
        reading = reader.read_setup(*parts)
        params = reader.param_infos(parts[0])
        layers = list(getattr(reader, "layer_names", lambda model: [])(parts[0]))
    except (TypeError, ValueError, AttributeError) as exc:
        raise CliError(f"{source}: cannot read it as a {framework} setup: {exc}") from None
    return Setup(source, params, reading, layers)
