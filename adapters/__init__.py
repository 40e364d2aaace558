"""Built-in regcore backends, installed as ``regcore_adapters``.

Each backend lives in its own subpackage, imports its framework lazily (only when the backend
module itself is imported) and registers itself by entry point in group ``regcore.backends``.
"""
