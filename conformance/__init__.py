"""The regcore conformance suite, installed as ``regcore_conformance``: a pytest plugin plus the
test modules it runs against any registered backend (``python -m regcore_conformance --help``)."""
