"""What the ``regcore`` verbs share: exit codes, the one-line error, reading a spec file, comma
lists, whether a device is usable, and the progress bar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from regcore.errors import SpecError
from regcore.serialize import from_json
from regcore.spec import Spec

EXIT_OK, EXIT_DISAGREE, EXIT_BAD_INPUT = 0, 1, 2


class CliError(Exception):
    """Bad input or environment: one line, exit code 2."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (the CLI never prints a traceback)."""
    return " ".join(str(exc).split())


def split_commas(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; ``None`` for no text (the option's default)."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def load_spec(path: Path) -> Spec:
    """A spec from a JSON file; :class:`CliError` / :class:`SpecError` naming the problem."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    try:
        return from_json(text)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def device_usable(backend: Any, device: str) -> bool:
    """``backend.device_available(device)``, with a broken driver (any exception) as ``False``."""
    try:
        return bool(backend.device_available(device))
    except Exception:  # a broken driver: the device is not usable
        return False


class ProgressBar:
    """A rich progress bar on stderr while work runs (only on a terminal, never with --json);
    entering gives ``advance(n, description=None)``."""

    def __init__(self, total: int, quiet: bool, description: str = "checking") -> None:
        self.total, self.quiet, self.description = total, quiet, description

    def __enter__(self) -> Callable[..., None]:
        from rich.console import Console
        from rich.progress import Progress

        console = Console(stderr=True)
        self.bar = Progress(console=console, transient=True,
                            disable=self.quiet or not console.is_terminal)
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)

        def advance(n: int, description: str | None = None) -> None:
            self.bar.update(task, advance=n, **({"description": description}
                                                if description else {}))

        return advance

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()
