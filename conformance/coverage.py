"""What a run checked, as a set, and a committed baseline it must not fall below.

A *combination* is one distinct (device, dtype, scenario, spec, check kind, native translation) a
run compared against the reference, as ``"device|dtype|scenario|case|test|check|translation"``
(``test`` the suite's test function; ``check`` the check's name, per parameter where it is one;
``translation`` ``-`` outside the native tests). Every report holds its run's set
(``coverage.combinations``) and its count. A speed-up that batches, caches or reorders tests must
keep the set: ``python -m regcore_conformance.coverage REPORT --baseline FILE`` exits 1, naming
what is missing, when the run checked less than the committed baseline (more is reported, not an
error: ``--update`` writes the new baseline). The CI sessions run it after each default run.

Baselines are stored compactly: the members (``scenario|case``) of each group (every other field)
as one of a few shared lists, since most groups check the same scenarios and specs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

FIELDS = ("device", "dtype", "scenario", "case", "test", "check", "translation")
CHECKED = ("pass", "fail", "xfail")  # outcomes of a comparison that ran (not skip, not crash)
BASELINE_VERSION = 1


def combination(record: dict, translation: str = "-") -> str:
    """The combination a report record (a :class:`~regcore_conformance.report.Record` as a dict)
    checked."""
    test = record["test"].split("::")[-1].split("[")[0]
    return "|".join((record["device"], record["dtype"], record["scenario"], record["case"], test,
                     record["check"], translation))


def _split(combo: str) -> tuple[str, str]:
    """(group, member): ``member`` is ``scenario|case``, ``group`` every other field."""
    device, dtype, scenario, case, test, check, translation = combo.split("|")
    return "|".join((test, check, translation, device, dtype)), f"{scenario}|{case}"


def compact(combos: Iterable[str]) -> dict:
    """The baseline form of a set of combinations."""
    groups: dict[str, list[str]] = defaultdict(list)
    for combo in sorted(set(combos)):
        group, member = _split(combo)
        groups[group].append(member)
    lists: dict[tuple[str, ...], str] = {}
    for members in groups.values():
        lists.setdefault(tuple(members), f"L{len(lists)}")
    return {"baseline_version": BASELINE_VERSION, "count": sum(map(len, groups.values())),
            "lists": {name: list(members) for members, name in lists.items()},
            "groups": {group: lists[tuple(members)] for group, members in sorted(groups.items())}}


def expand(baseline: dict) -> set[str]:
    """The set of combinations a baseline holds."""
    combos = set()
    for group, name in baseline["groups"].items():
        test, check, translation, device, dtype = group.split("|")
        for member in baseline["lists"][name]:
            scenario, case = member.split("|")
            combos.add("|".join((device, dtype, scenario, case, test, check, translation)))
    return combos


def compare(run: set[str], baseline: set[str]) -> tuple[list[str], list[str]]:
    """(missing, new): combinations of the baseline the run did not check, and the run's
    combinations the baseline lacks."""
    return sorted(baseline - run), sorted(run - baseline)


def _summary(combos: list[str], limit: int = 12) -> str:
    shown = "\n".join(f"  {c}" for c in combos[:limit])
    more = f"\n  ... and {len(combos) - limit} more" if len(combos) > limit else ""
    return shown + more


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m regcore_conformance.coverage",
        description="Compare a conformance report's checked combinations with a baseline.")
    parser.add_argument("report", type=Path, help="conformance-<run>.json")
    parser.add_argument("--baseline", type=Path, required=True, help="the committed baseline")
    parser.add_argument("--update", action="store_true",
                        help="write the report's combinations as the new baseline")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        run = set(report["coverage"]["combinations"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{parser.prog}: error: {args.report}: no coverage set ({exc})", file=sys.stderr)
        return 2
    if args.update:
        args.baseline.parent.mkdir(parents=True, exist_ok=True)
        args.baseline.write_text(json.dumps(compact(run), indent=0) + "\n")
        print(f"{args.baseline}: {len(run)} combinations")
        return 0
    try:
        baseline = expand(json.loads(args.baseline.read_text()))
    except (OSError, ValueError, KeyError) as exc:
        print(f"{parser.prog}: error: {args.baseline}: not a coverage baseline ({exc})",
              file=sys.stderr)
        return 2
    missing, new = compare(run, baseline)
    name = report.get("backend", args.report.stem)
    print(f"coverage {args.report.name}: {len(run)} combinations checked, baseline "
          f"{len(baseline)}, {len(missing)} missing, {len(new)} new")
    if new:
        print(f"{len(new)} new (update the baseline with --update when intended):\n"
              + _summary(new))
    if missing:
        print(f"FAIL: {name} checked {len(missing)} fewer combinations than {args.baseline}:\n"
              + _summary(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
