"""``python -m regcore_conformance --backend NAME [pytest options]``: run the suite on a backend."""

from __future__ import annotations

import argparse
import sys

import pytest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m regcore_conformance",
        description="Run the regcore conformance suite against an installed backend. "
                    "Extra arguments go to pytest.",
    )
    parser.add_argument("--backend", required=True, help="registered backend name")
    parser.add_argument("--report", help="JSON report path")
    args, rest = parser.parse_known_args(argv)
    pytest_args = ["--pyargs", "regcore_conformance", "-p", "no:cacheprovider",
                   "-W", "ignore::pytest.PytestAssertRewriteWarning",
                   "--regcore-backend", args.backend]
    if args.report:
        pytest_args += ["--regcore-report", args.report]
    return int(pytest.main(pytest_args + rest))


if __name__ == "__main__":
    sys.exit(main())
