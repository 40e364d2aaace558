"""``regcore audit SETUP``: what a real training setup regularizes, per parameter, in canonical
numbers, and the spec that says it (``SETUP``: ``FRAMEWORK:MODULE:FUNCTION``, see
:mod:`regcore_apps.cli.setups`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from regcore.serialize import to_dict
from regcore.spec import Plan
from regcore_apps.cli.common import EXIT_OK
from regcore_apps.cli.setups import load_setup


def add_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="what a torch or Keras setup regularizes, as a spec")
    p.add_argument("setup", help="FRAMEWORK:MODULE:FUNCTION, FUNCTION() -> (model, optimizer)")
    p.add_argument("--json", action="store_true", help="the spec, parameters and notes as JSON")


def applied(plan: Plan) -> list[dict[str, Any]]:
    """Per parameter: its role and shape, its terms (canonical numbers) and decay rate."""
    return [{"param": p.name, "role": p.role, "shape": list(p.shape), "trainable": p.trainable,
             "terms": {t.kind: t.scaled() for t in plan.terms_for(p.name)},
             "decay": plan.decay.get(p.name)} for p in plan.params]


def activity(plan: Plan) -> list[dict[str, Any]]:
    """Per activity term (a penalty on a layer's output): the layer, the term's canonical
    numbers and whether it is divided by the batch size."""
    return [{"layer": a.layer, "kind": a.term.kind, "numbers": a.term.scaled(),
             "reduction": a.reduction} for a in plan.activity]


def run(args: argparse.Namespace) -> int:
    setup = load_setup(args.setup)
    plan = setup.plan()
    rows, outputs = applied(plan), activity(plan)
    if args.json:
        print(json.dumps({"setup": setup.source, "spec": to_dict(setup.reading.spec),
                          "params": rows, "activity": outputs,
                          "notes": list(setup.reading.notes)}, indent=2))
        return EXIT_OK
    print(f"{setup.source}: {len(rows)} parameters")
    for r in rows:
        terms = ", ".join(f"{k} " + " ".join(f"{n}={v:g}" for n, v in nums.items())
                          for k, nums in r["terms"].items())
        decay = f"decay rate={r['decay']:g}" if r["decay"] is not None else ""
        what = "; ".join(filter(None, [terms, decay])) or "nothing"
        frozen = " (frozen)" if not r["trainable"] else ""
        print(f"  {r['param']:<28} {r['role']:<10} {str(tuple(r['shape'])):<12} {what}{frozen}")
    for a in outputs:
        numbers = " ".join(f"{n}={v:g}" for n, v in a["numbers"].items())
        print(f"  output of {a['layer']:<18} {a['kind']} {numbers} ({a['reduction']})")
    for note in setup.reading.notes:
        print(f"note: {note}")
    return EXIT_OK
