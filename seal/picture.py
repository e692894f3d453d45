"""Seal pictures, drawn with Pillow: the round official seal and the square personal seal.

Layout follows common practice for Chinese official seals (GA 241 style): a red ring, a five-pointed
star in the centre, the organisation's name along the upper arc with each character's top pointing
outwards, the seal's purpose in a straight line under the star, and an optional 13-digit seal code
along the lower arc. Background transparent, so the seal sits on the document like ink.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

RED = (230, 0, 18, 255)
DPI = 300  # print quality; a 42 mm seal is ~500 px wide


def mm(value: float, dpi: int = DPI) -> int:
    return round(value / 25.4 * dpi)


@lru_cache(maxsize=1)
def font_path() -> str:
    """Noto Sans CJK Bold (SIL OFL), shipped by the `cvttf-notosanscjk-bold` wheel: no root needed."""
    import cvttf_NotoSansCJK_Bold

    path: str = cvttf_NotoSansCJK_Bold.get_TTF_path()
    return path


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(), size)


@dataclass(frozen=True)
class RoundSeal:
    name: str  # organisation name, along the upper arc
    purpose: str = ""  # e.g. 合同专用章; empty for the organisation's official seal
    code: str = ""  # optional 13-digit seal code, along the lower arc
    diameter_mm: float = 42.0


def _glyph(char: str, size: int, color: tuple[int, int, int, int], stretch: float = 1.0) -> Image.Image:
    """One character on a transparent tile, optionally narrowed as seal engravers do for long names."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(char)
    width, height = max(1, round(right - left)), max(1, round(bottom - top))
    tile = Image.new("RGBA", (width + 4, height + 4), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((2 - left, 2 - top), char, font=font, fill=color)
    if stretch != 1.0:
        tile = tile.resize((max(1, round(tile.width * stretch)), tile.height), Image.Resampling.LANCZOS)
    return tile


def _text_on_arc(
    image: Image.Image,
    text: str,
    *,
    centre: tuple[float, float],
    radius: float,
    span_deg: float,
    size: int,
    top: bool,
    stretch: float = 1.0,
) -> None:
    """Characters evenly spaced on an arc centred at the top (or bottom), upright towards the rim."""
    if not text:
        return
    count = len(text)
    step = span_deg / max(count - 1, 1) if count > 1 else 0.0
    start = -span_deg / 2 if count > 1 else 0.0
    for i, char in enumerate(text):
        angle = start + i * step  # degrees clockwise from the top (or, for the bottom, from the bottom)
        tile = _glyph(char, size, RED, stretch)
        if top:
            theta = math.radians(angle - 90)
            rotated = tile.rotate(-angle, resample=Image.Resampling.BICUBIC, expand=True)
        else:
            theta = math.radians(90 - angle)
            rotated = tile.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        x = centre[0] + radius * math.cos(theta)
        y = centre[1] + radius * math.sin(theta)
        image.alpha_composite(rotated, (round(x - rotated.width / 2), round(y - rotated.height / 2)))


def _star(draw: ImageDraw.ImageDraw, centre: tuple[float, float], outer: float) -> None:
    inner = outer * math.sin(math.radians(18)) / math.sin(math.radians(54))
    points = []
    for k in range(10):
        r = outer if k % 2 == 0 else inner
        theta = math.radians(-90 + k * 36)
        points.append((centre[0] + r * math.cos(theta), centre[1] + r * math.sin(theta)))
    draw.polygon(points, fill=RED)


def render_round(seal: RoundSeal, dpi: int = DPI) -> Image.Image:
    size = mm(seal.diameter_mm, dpi)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    c = (size / 2, size / 2)
    ring = mm(1.2 * seal.diameter_mm / 42, dpi)
    draw.ellipse((ring / 2, ring / 2, size - ring / 2, size - ring / 2), outline=RED, width=ring)
    _star(draw, c, size * 0.17)
    name_size = round(size * (0.15 if len(seal.name) <= 12 else 0.13 if len(seal.name) <= 18 else 0.11))
    span = min(250.0, 20.0 * len(seal.name) + 10) if len(seal.name) > 1 else 0.0
    _text_on_arc(
        image,
        seal.name,
        centre=c,
        radius=size / 2 - ring - name_size * 0.62,
        span_deg=span,
        size=name_size,
        top=True,
        stretch=0.8 if len(seal.name) > 10 else 0.9,
    )
    if seal.purpose:
        font = _font(round(size * 0.1))
        box = draw.textbbox((0, 0), seal.purpose, font=font)
        width = box[2] - box[0]
        draw.text((c[0] - width / 2 - box[0], size * 0.66 - box[1]), seal.purpose, font=font, fill=RED)
    if seal.code:
        code_size = round(size * 0.055)
        _text_on_arc(
            image,
            seal.code,
            centre=c,
            radius=size / 2 - ring - code_size * 0.9,
            span_deg=min(90.0, 6.0 * len(seal.code)),
            size=code_size,
            top=False,
        )
    return image


@dataclass(frozen=True)
class SquareSeal:
    name: str  # two to four characters; 之印 / 印 is added to make four
    side_mm: float = 20.0


def square_characters(name: str) -> str:
    if len(name) >= 4:
        return name[:4]
    if len(name) == 3:
        return name + "印"
    if len(name) == 2:
        return name + "之印"
    return (name + "之印章")[:4]


def render_square(seal: SquareSeal, dpi: int = DPI) -> Image.Image:
    """Four characters in two columns read right to left, inside a square frame."""
    size = mm(seal.side_mm, dpi)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    border = max(2, round(size * 0.06))
    draw.rectangle((border / 2, border / 2, size - border / 2, size - border / 2), outline=RED, width=border)
    chars = square_characters(seal.name)
    cell = (size - 2 * border) / 2
    glyph_size = round(cell * 0.9)
    # traditional order: right column top-to-bottom, then left column
    positions = [(1, 0), (1, 1), (0, 0), (0, 1)]
    for char, (col, row) in zip(chars, positions, strict=False):
        tile = _glyph(char, glyph_size, RED)
        tile = tile.resize((round(cell * 0.88), round(cell * 0.88)), Image.Resampling.LANCZOS)
        x = border + col * cell + (cell - tile.width) / 2
        y = border + row * cell + (cell - tile.height) / 2
        image.alpha_composite(tile, (round(x), round(y)))
    return image


def png_bytes(image: Image.Image) -> bytes:
    """A 16-colour palette PNG with transparency: one ink colour plus anti-aliasing steps is all a seal
    has, and the picture travels inside every signature (SESeal), so size matters (~18 KB at 300 dpi)."""
    out = io.BytesIO()
    image.quantize(colors=16, method=Image.Quantize.FASTOCTREE).save(out, format="PNG", optimize=True, dpi=(DPI, DPI))
    return out.getvalue()
