"""regcore: one backend-neutral regularization spec, native code on every framework.

Importing regcore imports no framework (no torch, tensorflow, jax or keras) and not NumPy.
"""

__version__ = "0.1.0"  # before the imports: export_support reads it

from regcore import (  # noqa: E402  (public for backend authors)
    export_support,  # the exporter kit
    proximal,  # proximal_train's split of a plan into smooth terms and shrinkage
)
from regcore.backend import Backend, ModelSpec, Optimizer, check_params, check_shapes
from regcore.conventions import CONVENTIONS, Convention
from regcore.decay import DecoupledWeightDecay
from regcore.errors import SpecError, UnsupportedError
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
    "DecoupledWeightDecay",
    "ElasticNet",
    "GroupLasso",
    "ModelSpec",
    "Optimizer",
    "Orthogonal",
    "ParamInfo",
    "Plan",
    "Rule",
    "Select",
    "Spec",
    "SpecError",
    "Term",
    "UnsupportedError",
    "available_backends",
    "check_params",
    "check_shapes",
    "convert",
    "export_support",
    "from_dict",
    "from_json",
    "load_backend",
    "proximal",
    "to_dict",
    "to_json",
]
