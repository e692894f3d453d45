"""Find where a keyword is printed on a page, to centre a seal on it (e.g. the issuing authority's name).

Positions come from pypdf's text extraction (text matrix × CTM at the start of each text run); the
keyword's offset inside its run is estimated from the font size (half an em for Latin, a full em for
CJK), so the centre is approximate to a character or so — close enough for a 42 mm seal.
"""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PdfReadError


def _advance(text: str, size: float) -> float:
    return sum(size * (1.0 if ord(ch) > 0x2E7F else 0.5) for ch in text)


def find_keyword(data: bytes, page_index: int, keyword: str) -> tuple[float, float] | None:
    """Centre (x, y) in PDF points of the first occurrence of `keyword` on the page, or None."""
    try:
        page = PdfReader(io.BytesIO(data)).pages[page_index]
    except (PdfReadError, IndexError, ValueError, KeyError):
        return None
    hits: list[tuple[float, float]] = []

    def visit(text: str, cm: Any, tm: Any, font_dict: Any, font_size: float) -> None:
        if hits or keyword not in text:
            return
        size = font_size * ((tm[0] ** 2 + tm[1] ** 2) ** 0.5 or 1.0) * ((cm[0] ** 2 + cm[1] ** 2) ** 0.5 or 1.0)
        x0 = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y0 = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        before = text[: text.index(keyword)]
        start = x0 + _advance(before, size)
        hits.append((start + _advance(keyword, size) / 2, y0 + size * 0.35))

    try:
        page.extract_text(visitor_text=visit)
    except (PdfReadError, ValueError, KeyError, TypeError):
        return None
    return hits[0] if hits else None
