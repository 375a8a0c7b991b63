"""Where the CLI writes: results on stdout, progress and errors on stderr."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print the error and return the Exit to raise (2: bad input, 1: failed operation)."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)
