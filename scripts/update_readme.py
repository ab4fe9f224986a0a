"""Regenerate the README's configuration table from cgrpy.config (tests check it is current)."""

from __future__ import annotations

from pathlib import Path

from cgrpy.config import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"

text = README.read_text()
a = text.index(START) + len(START)
b = text.index(END)
README.write_text(text[:a] + "\n" + markdown_table() + "\n" + text[b:])
print("README configuration table updated")
