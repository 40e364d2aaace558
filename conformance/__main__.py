"""``python -m regcore_conformance --backend NAME [pytest options]``: run the suite on a backend.

Exit codes are pytest's (0 passed, 1 some test failed, 4 usage error: an unknown backend, ...),
and 2 with one line on stderr when pytest itself is not installed.
"""

from __future__ import annotations

import argparse
import sys

PROG = "python -m regcore_conformance"
INSTALL = "pip install 'regcore[conformance]'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the regcore conformance suite against an installed backend. "
                    f"Extra arguments go to pytest (install it with: {INSTALL}).",
    )
    parser.add_argument("--backend", required=True, help="registered backend name")
    parser.add_argument("--report", help="JSON report path")
    args, rest = parser.parse_known_args(argv)
    try:
        import pytest
    except ImportError as exc:
        print(f"{PROG}: error: the conformance suite runs under pytest, which cannot be imported "
              f"({exc}); {INSTALL}", file=sys.stderr)
        return 2
    pytest_args = ["--pyargs", "regcore_conformance", "-p", "no:cacheprovider",
                   "-W", "ignore::pytest.PytestAssertRewriteWarning",
                   "--regcore-backend", args.backend]
    if args.report:
        pytest_args += ["--regcore-report", args.report]
    return int(pytest.main(pytest_args + rest))


if __name__ == "__main__":
    sys.exit(main())
