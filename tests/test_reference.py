"""The config reference (seq2seq.reference): README in sync, every key documented."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from seq2seq import config, reference
from seq2seq.errors import UserError
from seq2seq.reference import (
    END,
    START,
    Row,
    config_rows,
    field_comments,
    generated_section,
    markdown_table,
    update_readme,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def _config_keys(cls: type, prefix: str = "") -> set[str]:
    """Every dotted key of ``cls`` (corpus keys once per split)."""
    keys = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        keys.add(prefix + f.name)
        section = reference._section_class(hints[f.name])
        if section is not None:
            keys |= _config_keys(section, f"{prefix}{f.name}.")
    return keys


def _expand(key: str) -> set[str]:
    """``data.{train,valid}.src`` -> ``{data.train.src, data.valid.src}``."""
    if "{" not in key:
        return {key}
    head, rest = key.split("{", 1)
    names, tail = rest.split("}", 1)
    return {k for name in names.split(",") for k in _expand(head + name + tail)}


def test_readme_section_is_the_generated_reference() -> None:
    """README.md holds exactly what the generator makes from config.py.

    If this fails after a config change: python -m seq2seq.reference --write README.md
    """
    text = README.read_text(encoding="utf-8")
    start, end = reference.readme_section(text)
    assert text[start:end] == generated_section()


def test_every_config_field_has_a_row_with_a_meaning() -> None:
    rows = config_rows()
    undocumented = [row.key for row in rows if not row.meaning.strip()]
    assert undocumented == [], (
        f"fields without a comment in seq2seq/config.py: {undocumented}"
    )
    documented = set().union(*(_expand(row.key) for row in rows))
    assert documented == _config_keys(config.Config)
    assert len({row.key for row in rows}) == len(rows)


def test_rows_show_types_and_yaml_defaults() -> None:
    rows = {row.key: row for row in config_rows()}
    assert rows["train.lr"].type == "float"
    assert rows["train.lr"].default == "`0.001`"
    assert rows["train.patience"].type == "int or null"
    assert rows["train.patience"].default == "`null`"
    assert rows["train.betas"].type == "[float, float]"
    assert rows["train.betas"].default == "`[0.9, 0.999]`"
    assert rows["train.snapshot_minutes"].type == "list of float"
    assert rows["train.snapshot_minutes"].default == "`[]`"
    assert rows["tokenizer.joint"].default == "`true`"
    assert rows["device"].type == "one of `auto`, `cpu`, `cuda`"
    assert rows["data.test"].type == "mapping or null"
    assert rows["data"].default == reference.NO_DEFAULT
    # A section without a comment falls back to its class docstring.
    assert rows["decode"].meaning == config.DecodeConfig.__doc__.split("\n")[0]


SOURCE = '''
@dataclass
class Example:
    """Docstring, not a comment."""

    # block above,
    # two lines
    a: int = 1  # and the trailing one
    b: str = "x"  # b only
    c: tuple[int, ...] = (  # inside
        1,  # the value
    )
    # above d
    d: bool = True
    e: float = 0.5
    # a stray comment at the end of the class body
'''


def test_field_comments_reads_blocks_above_and_trailing_comments() -> None:
    assert field_comments(SOURCE) == {
        "Example": {
            "a": "block above, two lines and the trailing one",
            "b": "b only",
            "c": "inside the value",
            "d": "above d",
            "e": "",
        }
    }


def test_markdown_table_escapes_pipes() -> None:
    table = markdown_table([Row("k", "one of `a`, `b`", "`a`", "a | b")])
    assert table.splitlines() == [
        "| key | type | default | meaning |",
        "|---|---|---|---|",
        "| `k` | one of `a`, `b` | `a` | a \\| b |",
    ]


def test_update_readme_replaces_only_the_marked_section() -> None:
    text = f"# Title\n\nbefore\n{START}\nold table\n{END}\nafter\n"
    updated = update_readme(text)
    assert updated == f"# Title\n\nbefore\n{START}{generated_section()}{END}\nafter\n"
    assert update_readme(updated) == updated
    with pytest.raises(UserError, match="no <!-- config-reference:start"):
        update_readme("no markers here")


def test_write_and_check_through_main(tmp_path: Path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\n| stale |\n{END}\n", encoding="utf-8")
    assert reference.main(["--check", str(readme)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert reference.main(["--write", str(readme)]) == 0
    assert reference.main(["--check", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8").startswith(f"intro\n{START}\n| key |")
    assert reference.main(["--check", str(tmp_path / "missing.md")]) == 2
    assert reference.main([]) == 0
    assert capsys.readouterr().out == markdown_table(config_rows())
