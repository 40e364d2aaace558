"""regcore: one backend-neutral regularization spec, native code on every framework.

Importing regcore imports no framework (no torch, tensorflow, jax or keras) and not NumPy.
"""

from regcore import (  # public for backend authors
    capabilities,  # the optional capabilities of a backend
    export_support,  # the exporter kit
    network,  # the harness's layer descriptions (conv and sequence models)
    proximal,  # proximal_train's split of a plan into smooth terms and shrinkage
)
from regcore._version import __version__
from regcore.activity import Activity, ActivityAssignment
from regcore.backend import Backend, UnknownDeviceError, check_arrays, check_shapes
from regcore.capabilities import (
    DataParallel,
    Harness,
    NativeTranslations,
    ProximalTraining,
    SnippetRunner,
    UnknownTranslationError,
)
from regcore.conventions import CONVENTIONS, Convention
from regcore.decay import DecoupledWeightDecay
from regcore.errors import SpecError, UnsupportedError
from regcore.harness import ModelSpec, Optimizer  # the scenario harness's (the README uses them)
from regcore.network import Network
from regcore.reading import Reading, select_names  # a setup read back (the readers')
from regcore.registry import BackendNotFoundError, available_backends, load_backend
from regcore.selection import DEFAULT_SELECT, ROLES, ParamInfo, Select
from regcore.serialize import SCHEMA_VERSION, from_dict, from_json, to_dict, to_json
from regcore.spec import Assignment, Plan, Rule, Spec
from regcore.terms import (
    L1,
    L2,
    ORTHOGONAL_EPSILON,
    TERMS,
    ElasticNet,
    GroupLasso,
    Orthogonal,
    Term,
    convert,
)

__all__ = [
    "__version__",
    "Activity",
    "ActivityAssignment",
    "CONVENTIONS",
    "DEFAULT_SELECT",
    "L1",
    "L2",
    "ORTHOGONAL_EPSILON",
    "ROLES",
    "SCHEMA_VERSION",
    "TERMS",
    "Assignment",
    "Backend",
    "BackendNotFoundError",
    "Convention",
    "DataParallel",
    "DecoupledWeightDecay",
    "ElasticNet",
    "GroupLasso",
    "Harness",
    "ModelSpec",
    "NativeTranslations",
    "Network",
    "Optimizer",
    "Orthogonal",
    "ParamInfo",
    "Plan",
    "Reading",
    "ProximalTraining",
    "Rule",
    "Select",
    "SnippetRunner",
    "Spec",
    "SpecError",
    "Term",
    "UnknownDeviceError",
    "UnknownTranslationError",
    "UnsupportedError",
    "available_backends",
    "capabilities",
    "check_arrays",
    "check_shapes",
    "select_names",
    "convert",
    "export_support",
    "network",
    "from_dict",
    "from_json",
    "load_backend",
    "proximal",
    "to_dict",
    "to_json",
]


def __getattr__(name: str) -> object:
    if name == "check_params":
        raise AttributeError("regcore.check_params: renamed to regcore.check_arrays (the array "
                             "check of backends; regcore.conventions.check_params is another "
                             "thing, the coefficient check)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
