"""Help in the conventions of Unix tools: `--limit INTEGER`, `USER`, `[csv|jsonl]`.

Typer writes `--limit <int range>` and `{USER}`; its parameters are re-classed here to
ones that write a metavar instead (the one given, else one named after the type).
"""

from __future__ import annotations

from typing import Any

from typer._click.core import Context
from typer.core import TyperArgument, TyperOption


def _metavar(param: TyperOption | TyperArgument, ctx: Context) -> str:
    if param.metavar is not None:
        return param.metavar
    described = param.display_type(ctx).strip("<>")
    if "|" in described:
        return f"[{described}]"  # a choice: its values, as click writes them
    if described.startswith(("int", "float")):
        return "INTEGER" if described.startswith("int") else "NUMBER"
    if described.startswith("datetime") or "%Y" in described:
        return "DATE"
    if described in {"path", "file", "directory"}:
        return "PATH"
    return "TEXT"


class ConventionalOption(TyperOption):
    def display_type_rich(self, ctx: Context) -> str:
        return _metavar(self, ctx)


class ConventionalArgument(TyperArgument):
    def display_type_rich(self, ctx: Context) -> str:
        return ""  # the argument's name is its metavar already

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"


def conventional(command: Any) -> Any:
    """`command` and its subcommands with conventional help; returns `command`."""
    for param in getattr(command, "params", []):
        if type(param) is TyperOption:
            param.__class__ = ConventionalOption
        elif type(param) is TyperArgument:
            param.__class__ = ConventionalArgument
    for sub in (getattr(command, "commands", None) or {}).values():
        conventional(sub)
    return command
