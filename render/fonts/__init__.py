"""The fonts every PDF is set in (Noto, shipped in this directory) and which characters they can show.

Text with a character that no font covers is refused before rendering (`uncovered_text_errors`):
a PDF never shows "?" or an empty box in place of a letter. `build_fonts.py` makes the files.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

FONTS_DIR = Path(__file__).resolve().parent
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
# Characters that are never drawn as glyphs of their own: controls (tab, newline), format characters
# (zero-width joiners, direction marks) and variation selectors.
_NOT_DRAWN = frozenset({"Cc", "Cf"})
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
SHOWN_AT_MOST = 10  # characters listed in one error message


def font_files(directories: Iterable[Path]) -> list[Path]:
    """Every font file in `directories` (not recursive), sorted, missing directories skipped."""
    found: list[Path] = []
    for directory in directories:
        if directory.is_dir():
            found += sorted(p for p in directory.iterdir() if p.suffix.lower() in FONT_SUFFIXES)
    return found


class FontCoverage:
    """The set of code points that at least one of the fonts has a glyph for."""

    def __init__(self, code_points: frozenset[int]) -> None:
        self.code_points = code_points
        # Most text is plain ASCII: one check instead of one per character.
        self._ascii_covered = all(code in code_points for code in range(0x20, 0x7F))

    @classmethod
    def of_files(cls, paths: Iterable[Path]) -> FontCoverage:
        """Read the character maps of font files (every face of a collection)."""
        from fontTools.ttLib import TTCollection, TTFont

        points: set[int] = set()
        for path in paths:
            if path.suffix.lower() in (".ttc", ".otc"):
                faces = TTCollection(str(path), lazy=True).fonts
            else:
                faces = [TTFont(str(path), lazy=True)]
            for face in faces:
                points.update(face.getBestCmap() or {})
        return cls(frozenset(points))

    def covers(self, char: str) -> bool:
        """Whether `char` can be shown (or needs no glyph of its own)."""
        code = ord(char)
        if code in self.code_points or unicodedata.category(char) in _NOT_DRAWN:
            return True
        return any(start <= code <= end for start, end in _VARIATION_SELECTORS)

    def uncovered(self, text: str) -> list[str]:
        """The distinct characters of `text` that no font can show, in order of appearance."""
        if self._ascii_covered and text.isascii():
            return []
        missing: dict[str, None] = {}
        for char in text:
            if char not in missing and not self.covers(char):
                missing[char] = None
        return list(missing)


def fonts_stamp(directories: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    """Path, size and modification time of every font file: changes when a font is added or replaced."""
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in font_files(directories))


def coverage_of(directories: tuple[Path, ...]) -> FontCoverage:
    """The coverage of the fonts in `directories`, read again only when a font file changes."""
    return _coverage(fonts_stamp(directories))


@cache
def _coverage(stamp: tuple[tuple[str, int, int], ...]) -> FontCoverage:
    return FontCoverage.of_files(Path(path) for path, _size, _mtime in stamp)


def describe_chars(chars: list[str]) -> str:
    """List characters for an error message: '🎉' (U+1F389, PARTY POPPER), ..."""
    shown = [f"'{c}' (U+{ord(c):04X}{', ' + unicodedata.name(c) if unicodedata.name(c, '') else ''})"
             for c in chars[:SHOWN_AT_MOST]]
    more = f" and {len(chars) - SHOWN_AT_MOST} more" if len(chars) > SHOWN_AT_MOST else ""
    return ", ".join(shown) + more


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value with its field path (data.scales[2].name)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def uncovered_text_errors(data: Any, coverage: FontCoverage, prefix: str = "data") -> list[dict[str, str]]:
    """One error per field whose text has characters no font can show, naming them."""
    errors = []
    for field, text in _strings(data, prefix):
        missing = coverage.uncovered(text)
        if missing:
            errors.append({"field": field, "message": f"has characters no report font can show: "
                                                      f"{describe_chars(missing)}; remove or replace them"})
    return errors
