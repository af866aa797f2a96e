"""The config reference: a Markdown table generated from the schema in config.py.

The comments in ``seq2seq/config.py`` are the documentation. A field's meaning is
the block of comment-only lines directly above it followed by the comment at the
end of its own line(s); a field holding a section (a dataclass) without a comment
takes the first line of that class's docstring. Sibling fields of the same
section type (``data.train``, ``data.valid``, ``data.test``) share one set of rows,
``data.{train,valid,test}.src`` and so on.

``python -m seq2seq.reference`` prints the table; ``--write README.md`` replaces
the text between the markers below; ``--check README.md`` exits with status 1
when that text is out of date.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import sys
import tokenize
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from seq2seq import config as config_module
from seq2seq.errors import UserError

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
NO_DEFAULT = "—"


@dataclass(frozen=True)
class Row:
    """One key of the reference table."""

    key: str  # dotted key path, e.g. "train.lr"
    type: str  # readable type, e.g. "float or null"
    default: str  # the default as YAML would spell it, or NO_DEFAULT
    meaning: str  # from the comments in config.py


# ---------------------------------------------------------------- comments


def field_comments(source: str) -> dict[str, dict[str, str]]:
    """Map class name -> field name -> its comment text, from a module's source.

    Fields are annotated assignments in a class body; their comments are the
    comment-only lines directly above and the comments on their own lines.
    """
    lines = source.splitlines()
    trailing: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row = token.start[0]
            if lines[row - 1].strip().startswith("#"):
                continue  # a comment-only line: found from the field below it
            trailing[row] = _comment_text(token.string)
    result: dict[str, dict[str, str]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        fields = result.setdefault(node.name, {})
        for stmt in node.body:
            if not (
                isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            ):
                continue
            above = []
            row = stmt.lineno - 1
            while row >= 1 and lines[row - 1].strip().startswith("#"):
                above.insert(0, _comment_text(lines[row - 1].strip()))
                row -= 1
            own = [
                trailing[r]
                for r in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
                if r in trailing
            ]
            fields[stmt.target.id] = " ".join(t for t in above + own if t)
    return result


def _comment_text(comment: str) -> str:
    return comment.lstrip("#").strip()


# ---------------------------------------------------------------- rows


def config_rows(root: type = config_module.Config) -> list[Row]:
    """Every key of ``root`` (a config dataclass) as a :class:`Row`, in order."""
    comments = field_comments(inspect.getsource(config_module))
    return _rows(root, "", comments)


def _rows(cls: type, prefix: str, comments: dict[str, dict[str, str]]) -> list[Row]:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    sections: dict[type, list[str]] = {}  # section class -> fields holding it
    for f in fields:
        section = _section_class(hints[f.name])
        if section is not None:
            sections.setdefault(section, []).append(f.name)
    rows = []
    for f in fields:
        tp = hints[f.name]
        section = _section_class(tp)
        meaning = comments.get(cls.__name__, {}).get(f.name, "")
        if not meaning and section is not None:
            meaning = (inspect.getdoc(section) or "").split("\n")[0]
        rows.append(Row(prefix + f.name, type_text(tp), default_text(f), meaning))
        if section is not None and sections[section][-1] == f.name:
            names = sections[section]
            inner = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
            rows.extend(_rows(section, f"{prefix}{inner}.", comments))
    return rows


def _section_class(tp: Any) -> type | None:
    """The dataclass a field holds (also when optional), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def type_text(tp: Any) -> str:
    """A readable name for a field annotation: ``int or null``, ``[float, float]``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        text = " or ".join(type_text(a) for a in args)
        return text + " or null" if len(args) < len(typing.get_args(tp)) else text
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_text(args[0])}"
        return "[" + ", ".join(type_text(a) for a in args) + "]"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def default_text(f: dataclasses.Field) -> str:
    """The field's default as YAML spells it, in backticks (sections: NO_DEFAULT)."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return NO_DEFAULT
    if dataclasses.is_dataclass(value):
        return NO_DEFAULT
    return f"`{_yaml_value(value)}`"


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)


# ---------------------------------------------------------------- Markdown


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table, one line per key, ending with a newline."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for row in rows:
        cells = [f"`{row.key}`", row.type, row.default, row.meaning]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def generated_section() -> str:
    """What belongs between :data:`START` and :data:`END` in the README."""
    return "\n" + markdown_table(config_rows())


def readme_section(text: str, name: str = "README.md") -> tuple[int, int]:
    """The character span between the markers in ``text``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise UserError(
            f"{name}: no {START} ... {END} markers; add them where the config "
            "reference belongs"
        )
    return start + len(START), end


def update_readme(text: str, name: str = "README.md") -> str:
    """``text`` with the section between the markers regenerated."""
    start, end = readme_section(text, name)
    return text[:start] + generated_section() + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.reference",
        description="Generate the config reference table from seq2seq/config.py.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="update FILE between markers")
    group.add_argument("--check", metavar="FILE", help="exit 1 if FILE is outdated")
    args = parser.parse_args(argv)
    try:
        if args.write is None and args.check is None:
            sys.stdout.write(markdown_table(config_rows()))
            return 0
        path = Path(args.write or args.check)
        text = path.read_text(encoding="utf-8")
        updated = update_readme(text, str(path))
        if args.check is not None:
            if updated != text:
                print(
                    f"{path}: the config reference is out of date; run "
                    f"python -m seq2seq.reference --write {path}",
                    file=sys.stderr,
                )
                return 1
            return 0
        if updated != text:
            path.write_text(updated, encoding="utf-8")
        return 0
    except (UserError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
