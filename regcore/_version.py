"""regcore's version, written once: the package, the exporters and pyproject.toml read it here."""

__version__ = "0.1.0"
