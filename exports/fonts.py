"""The fonts shipped with execgraph for PDF reports, and the characters they can show.

Workshop texts mix German, Korean, Japanese, Hindi, Arabic, Hebrew and emoji, often in one Stille
Post run. PDF viewers cannot be trusted to have fonts for all of them, so the PDF exporter embeds
the Noto fonts vendored under ``exports/assets/fonts`` (SIL OFL 1.1, see the README there): Noto
Sans (Latin, Greek, Cyrillic) is the main face, and fpdf2's font fallback picks the CJK,
Devanagari, Arabic, Hebrew or emoji face for characters Noto Sans lacks. Nothing is downloaded at
run time.

A character that no vendored font covers would render as an empty box, which hides what the
pupil wrote; :func:`mark_missing_glyphs` prints it as a visible ``[U+XXXX]`` marker instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from fpdf import FPDF

#: Where the font files live inside the installed package.
FONT_DIR: Final = Path(__file__).resolve().parent / "assets" / "fonts"
#: The family body text and headings are set in.
PRIMARY_FAMILY: Final = "NotoSans"


@dataclass(frozen=True, slots=True)
class FontFace:
    """One vendored font file and the family/style it is registered under."""

    family: str
    style: str
    filename: str

    @property
    def path(self) -> Path:
        """The font file."""
        return FONT_DIR / self.filename


FACES: Final = (
    FontFace(PRIMARY_FAMILY, "", "NotoSans-Regular.ttf"),
    FontFace(PRIMARY_FAMILY, "B", "NotoSans-Bold.ttf"),
    FontFace("NotoSansCJK", "", "NotoSansCJKjp-Regular-subset.otf"),
    FontFace("NotoSansDevanagari", "", "NotoSansDevanagari-Regular.ttf"),
    FontFace("NotoSansArabic", "", "NotoSansArabic-Regular.ttf"),
    FontFace("NotoSansHebrew", "", "NotoSansHebrew-Regular.ttf"),
    FontFace("NotoEmoji", "", "NotoEmoji-Regular.ttf"),
)
#: Families tried, in order, for a character the current font lacks.
FALLBACK_FAMILIES: Final = (
    "NotoSansCJK",
    "NotoSansDevanagari",
    "NotoSansArabic",
    "NotoSansHebrew",
    "NotoEmoji",
)


def register_fonts(pdf: FPDF) -> None:
    """Add every vendored face to ``pdf`` and set up fallback across scripts.

    Only regular weights exist for the non-Latin faces, so fallback ignores the style: a bold
    heading in Hindi is set in the regular Devanagari face.
    """
    for face in FACES:
        pdf.add_font(face.family, face.style, face.path)
    pdf.set_fallback_fonts(FALLBACK_FAMILIES, exact_match=False)


@cache
def covered_codepoints() -> frozenset[int]:
    """Every code point at least one vendored font has a glyph for."""
    covered: set[int] = set()
    for face in FACES:
        font = TTFont(face.path, lazy=True)
        try:
            covered.update(font.getBestCmap() or {})
        finally:
            font.close()
    return frozenset(covered)


def mark_missing_glyphs(text: str) -> str:
    """``text`` with each character no vendored font covers replaced by ``[U+XXXX]``.

    Newlines pass through; callers turn tabs into spaces first.
    """
    if text.isascii():
        return text
    covered = covered_codepoints()
    return "".join(
        char if char == "\n" or ord(char) in covered else f"[U+{ord(char):04X}]" for char in text
    )
