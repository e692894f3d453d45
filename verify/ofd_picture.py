"""OFD-format seal pictures (GB/T 38540 picture type "ofd"): a one-page OFD package of text, path and
image objects, drawn with Pillow so that a report shows the seal as its maker drew it rather than a
placeholder.

What is drawn: TextObject (glyph by glyph at TextCode X/Y/DeltaX, rotated and scaled by the CTM; one CJK
font stands in for the named one), PathObject (M L B Q C of AbbreviatedData, stroked and/or filled; an
arc A is drawn as its chord) and ImageObject (a MultiMedia image stretched over its CTM box). Units are
millimetres with y downwards, as in OFD. The package is untrusted: it is read through the bounded
Package of verify/ofd_package.py, and objects, path points, glyphs, image pixels and the page are
bounded again here. Anything outside that gives None (the report keeps its placeholder), never an exception.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import math
import posixpath
import re
import threading
import zipfile
from collections.abc import Callable
from functools import lru_cache, partial
from xml.etree.ElementTree import Element

from PIL import Image, ImageDraw, ImageFont

from verify.ofd_package import Package, find, local

log = logging.getLogger("trustseal.verify")

PX_PER_MM = 12
MAX_PACKAGE_BYTES = 4 * 1024 * 1024
MAX_PART_BYTES = 1024 * 1024  # one XML part, checked before it is inflated or parsed
MAX_IMAGE_BYTES = 2 * 1024 * 1024  # one image file
MAX_INFLATED_BYTES = 8 * 1024 * 1024  # everything the package's directory says it holds
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")  # no other Pillow plugin sees these bytes
MAX_PAGE_MM = 120.0  # seals are 20-60 mm: at 12 px/mm, at most 1,440 px a side
MAX_REMEMBERED_BYTES = 64 * 1024
MAX_OBJECTS = 4_000
MAX_PATH_POINTS = 50_000
MAX_GLYPHS = 500
MAX_GLYPH_PX = 240  # 20 mm glyphs
MAX_IMAGE_PIXELS = 4_000_000
MAX_DEPTH = 16
# Drawing work in pixels touched (glyph tiles, filled areas, stroked line area, images): what bounds
# the time of one picture whatever its objects (the vendor invoice seals cost 0.6 M; 10 M is ~0.2 s).
MAX_WORK_PIXELS = 10_000_000
BEZIER_STEPS = 16
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
Affine = tuple[float, float, float, float, float, float]  # x' = a x + c y + e, y' = b x + d y + f


# One picture at a time: the FreeType faces behind the cached fonts are not safe to share between
# threads drawing at once (pictures are drawn once per seal, so nothing waits long).
_RENDERING = threading.Lock()


class _Unrenderable(ValueError):
    pass


def _numbers(text: str | None, count: int | None = None) -> list[float]:
    values = [float(v) for v in _NUMBER.findall(text or "")]
    if count is not None and len(values) != count:
        raise _Unrenderable(f"expected {count} numbers in {text!r}")
    if not all(math.isfinite(v) and abs(v) < 1e6 for v in values):
        raise _Unrenderable("a number out of range")
    return values


def _deltas(text: str | None) -> list[float]:
    """DeltaX / DeltaY: numbers, where "g N D" stands for N times D."""
    tokens = (text or "").split()
    out: list[float] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "g" and i + 2 < len(tokens):
            count = int(float(tokens[i + 1]))
            if not 0 <= count <= MAX_GLYPHS:
                raise _Unrenderable("a DeltaX repeat out of range")
            out.extend([_numbers(tokens[i + 2], 1)[0]] * count)
            i += 3
        else:
            out.extend(_numbers(tokens[i], 1))
            i += 1
        if len(out) > MAX_GLYPHS:
            raise _Unrenderable("too many glyph advances")
    return out


def _bezier(control: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """BEZIER_STEPS points along the Bezier curve of `control` (its start excluded), in Bernstein form."""
    n = len(control) - 1
    weights = [math.comb(n, i) for i in range(n + 1)]
    out = []
    for k in range(1, BEZIER_STEPS + 1):
        t = k / BEZIER_STEPS
        terms = [w * (1 - t) ** (n - i) * t**i for i, w in enumerate(weights)]
        out.append((sum(c * p[0] for c, p in zip(terms, control, strict=True)),
                    sum(c * p[1] for c, p in zip(terms, control, strict=True))))  # fmt: skip
    return out


def _then(first: Affine, second: Affine) -> Affine:
    """`first` applied, then `second`."""
    a, b, c, d, e, f = first
    p, q, r, s, t, u = second
    return (p * a + r * b, q * a + s * b, p * c + r * d, q * c + s * d, p * e + r * f + t, q * e + s * f + u)


def _apply(m: Affine, x: float, y: float) -> tuple[float, float]:
    return m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]


def _color(element: Element | None, default: tuple[int, int, int] | None) -> tuple[int, int, int, int] | None:
    if element is None:
        return None if default is None else (*default, 255)
    values = [int(v) for v in _numbers(element.get("Value"))]
    alpha = int(float(element.get("Alpha", "255")))
    if len(values) == 1:
        values = values * 3  # grey
    if len(values) != 3 or not all(0 <= v <= 255 for v in [*values, alpha]):
        raise _Unrenderable("a colour other than 8-bit grey or RGB")
    return values[0], values[1], values[2], alpha


@lru_cache(maxsize=32)
def _font(px: int) -> ImageFont.FreeTypeFont:
    import cvttf_NotoSansCJK_Bold  # the font the seal pictures of seal/ use too

    return ImageFont.truetype(cvttf_NotoSansCJK_Bold.get_TTF_path(), px)


class _Page:
    def __init__(self, width_mm: float, height_mm: float, images: dict[str, Callable[[], bytes]]) -> None:
        self.image = Image.new("RGBA", (round(width_mm * PX_PER_MM), round(height_mm * PX_PER_MM)), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)
        self.images = images
        self.objects = 0
        self.points = 0
        self.glyphs = 0
        self.work = 0

    def spend(self, pixels: float) -> None:
        self.work += int(pixels)
        if self.work > MAX_WORK_PIXELS:
            raise _Unrenderable("drawing the picture would take too long")

    def px(self, m: Affine, x: float, y: float) -> tuple[float, float]:
        px, py = _apply(m, x, y)
        return px * PX_PER_MM, py * PX_PER_MM

    def content(self, element: Element, base: Affine, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise _Unrenderable("page blocks nested too deeply")
        for child in element:
            self.objects += 1
            if self.objects > MAX_OBJECTS:
                raise _Unrenderable("too many objects")
            kind = local(child.tag)
            if kind in ("Layer", "PageBlock"):
                self.content(child, base, depth + 1)
            elif kind in ("TextObject", "PathObject", "ImageObject"):
                x, y, _, _ = _numbers(child.get("Boundary"), 4)
                ctm = tuple(_numbers(child.get("CTM"), 6)) if child.get("CTM") else (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
                m = _then(ctm, _then((1.0, 0.0, 0.0, 1.0, x, y), base))  # type: ignore[arg-type]
                {"TextObject": self._text, "PathObject": self._path, "ImageObject": self._image}[kind](child, m)

    def _text(self, element: Element, m: Affine) -> None:
        size = _numbers(element.get("Size"), 1)[0]
        color = _color(find(element, "FillColor"), (0, 0, 0))
        scale = math.hypot(m[0], m[1])
        px = round(size * scale * PX_PER_MM)
        if color is None or px < 1:
            return
        if px > MAX_GLYPH_PX:
            raise _Unrenderable("glyphs larger than a seal's")
        font = _font(px)
        angle = math.degrees(math.atan2(m[1], m[0]))
        rotated = abs(angle) > 0.01
        half = math.ceil(1.5 * px) + 2  # a glyph drawn at its left baseline point stays within 1.5 em of it
        for code in (c for c in element if local(c.tag) == "TextCode"):
            gx, y = _numbers(code.get("X"), 1)[0], _numbers(code.get("Y"), 1)[0]
            deltas = _deltas(code.get("DeltaX"))
            for i, char in enumerate(code.text or ""):
                self.glyphs += 1
                if self.glyphs > MAX_GLYPHS:
                    raise _Unrenderable("too many glyphs")
                if i:
                    gx += deltas[i - 1] if i - 1 < len(deltas) else size
                ax, ay = self.px(m, gx, y)
                self.spend((2 * half) ** 2 * (4 if rotated else 1))  # (a bicubic rotation costs ~4 fills)
                tile = Image.new("RGBA", (2 * half, 2 * half), (0, 0, 0, 0))
                ImageDraw.Draw(tile).text((half, half), char, font=font, fill=color, anchor="ls")
                if rotated:  # y points down: a positive CTM angle turns clockwise on the page
                    tile = tile.rotate(-angle, resample=Image.Resampling.BICUBIC, center=(half, half))
                self._composite(tile, round(ax) - half, round(ay) - half)

    def _composite(self, tile: Image.Image, left: int, top: int) -> None:
        """`tile` over the page at (left, top), clipped to the page."""
        right, bottom = min(self.image.width, left + tile.width), min(self.image.height, top + tile.height)
        if right <= max(left, 0) or bottom <= max(top, 0):
            return
        part = tile.crop((max(0, -left), max(0, -top), right - left, bottom - top))
        self.image.alpha_composite(part, (max(left, 0), max(top, 0)))

    def _path(self, element: Element, m: Affine) -> None:
        data = find(element, "AbbreviatedData")
        tokens = (data.text or "").split() if data is not None else []
        subpaths: list[list[tuple[float, float]]] = []
        current: list[tuple[float, float]] = []
        i = 0

        def take(n: int) -> list[float]:
            nonlocal i
            values = _numbers(" ".join(tokens[i + 1 : i + 1 + n]), n)
            i += 1 + n
            return values

        while i < len(tokens):
            op = tokens[i]
            if op == "S" or op == "M":
                x, y = take(2)
                if len(current) > 1:
                    subpaths.append(current)
                current = [(x, y)]
            elif op == "L":
                current.append(tuple(take(2)))  # type: ignore[arg-type]
            elif op in ("B", "Q") and current:  # cubic, quadratic Bezier from the current point
                values = take(6 if op == "B" else 4)
                current.extend(_bezier([current[-1], *zip(values[::2], values[1::2], strict=True)]))
            elif op == "A" and current:
                current.append(tuple(take(7)[5:]))  # type: ignore[arg-type]  # (the chord of the arc)
            elif op == "C" and current:
                current.append(current[0])
                i += 1
            else:
                raise _Unrenderable(f"path operator {op!r}")
            self.points += 1 if op == "C" else BEZIER_STEPS
            if self.points > MAX_PATH_POINTS:
                raise _Unrenderable("too many path points")
        if len(current) > 1:
            subpaths.append(current)
        stroke = element.get("Stroke", "true") != "false"
        fill = element.get("Fill", "false") == "true"
        width = max(1, round(_numbers(element.get("LineWidth", "0.353"), 1)[0] * math.hypot(m[0], m[1]) * PX_PER_MM))
        stroke_color = _color(find(element, "StrokeColor"), (0, 0, 0))
        fill_color = _color(find(element, "FillColor"), None)
        if width > max(self.image.size):
            raise _Unrenderable("a line wider than the picture")
        for points in subpaths:
            pixels = [self.px(m, x, y) for x, y in points]
            if fill and fill_color is not None and len(pixels) > 2:
                xs, ys = [p[0] for p in pixels], [p[1] for p in pixels]
                self.spend(
                    (min(max(xs), self.image.width) - max(min(xs), 0) + 1)
                    * (min(max(ys), self.image.height) - max(min(ys), 0) + 1)
                )
                self.draw.polygon(pixels, fill=fill_color)
            if stroke and stroke_color is not None:
                self.spend(sum((math.dist(a, b) + width) * width for a, b in itertools.pairwise(pixels)))
                self.draw.line(pixels, fill=stroke_color, width=width, joint="curve")

    def _image(self, element: Element, m: Affine) -> None:
        load = self.images.get(element.get("ResourceID", ""))
        if load is None:
            return
        with Image.open(io.BytesIO(load()), formats=IMAGE_FORMATS) as source:
            if source.width * source.height > MAX_IMAGE_PIXELS:
                raise _Unrenderable("image too large")
            if source.format == "JPEG" and ("progressive" in source.info or "progression" in source.info):
                raise _Unrenderable("a progressive JPEG (its decoding cost is not bounded by its size)")
            self.spend(source.width * source.height)
            picture = source.convert("RGBA")
        left, top = self.px(m, 0, 0)
        right, bottom = self.px(m, 1, 1)  # an image fills its CTM's unit square
        box = (round(min(left, right)), round(min(top, bottom)), round(max(left, right)), round(max(top, bottom)))
        width, height = box[2] - box[0], box[3] - box[1]
        if not 0 < width <= self.image.width * 2 or not 0 < height <= self.image.height * 2:
            return
        self.spend(width * height)
        self._composite(picture.resize((width, height), Image.Resampling.LANCZOS), box[0], box[1])


def _render(data: bytes) -> bytes:
    if len(data) > MAX_PACKAGE_BYTES:
        raise _Unrenderable("picture package too large")
    package = Package(data)
    if len(package.names) > 256 or sum(info.file_size for info in package.names.values()) > MAX_INFLATED_BYTES:
        raise _Unrenderable("too many entries, or too much inflated data, for a seal picture")

    def xml(path: str) -> Element:
        return package.xml(path, MAX_PART_BYTES)

    body = find(xml("OFD.xml"), "DocBody")
    root_el = find(body, "DocRoot") if body is not None else None
    if root_el is None or not (root_el.text or "").strip():
        raise _Unrenderable("no DocRoot")
    doc_path = package.resolve(root_el.text or "", "")
    doc_dir = posixpath.dirname(doc_path)
    document = xml(doc_path)
    common = find(document, "CommonData")
    pages = find(document, "Pages")
    first = next((p for p in pages if local(p.tag) == "Page"), None) if pages is not None else None
    if common is None or first is None:
        raise _Unrenderable("no page")
    page_path = package.resolve(first.get("BaseLoc", ""), doc_dir)
    page = xml(page_path)
    area = find(page, "Area")
    box_el = find(area, "PhysicalBox") if area is not None else None
    if box_el is None:
        page_area = find(common, "PageArea")
        box_el = find(page_area, "PhysicalBox") if page_area is not None else None
    if box_el is None:
        raise _Unrenderable("no PhysicalBox")
    x0, y0, width, height = _numbers(box_el.text, 4)
    if not (0 < width <= MAX_PAGE_MM and 0 < height <= MAX_PAGE_MM):
        raise _Unrenderable("page size out of range")
    images: dict[str, Callable[[], bytes]] = {}  # read only when an ImageObject draws one, once per file

    @lru_cache(maxsize=16)
    def image_file(path: str) -> bytes:
        return package.read(path, MAX_IMAGE_BYTES)

    for res in (c for c in common if local(c.tag) in ("PublicRes", "DocumentRes")):
        res_path = package.resolve(res.text or "", doc_dir)
        resources = xml(res_path)
        res_dir = posixpath.join(posixpath.dirname(res_path), resources.get("BaseLoc", ""))
        for media in resources.iter():
            if local(media.tag) == "MultiMedia" and media.get("Type", "Image") == "Image":
                file_el = find(media, "MediaFile")
                if file_el is not None and file_el.text:
                    with contextlib.suppress(ValueError):  # a missing image matters only if it is drawn
                        path = package.resolve(file_el.text, res_dir)
                        images[media.get("ID", "")] = partial(image_file, path)
    canvas = _Page(width, height, images)
    content = find(page, "Content")
    if content is not None:
        canvas.content(content, (1.0, 0.0, 0.0, 1.0, -x0, -y0))
    out = io.BytesIO()
    canvas.image.save(out, "PNG")
    return out.getvalue()


def render_png(data: bytes) -> bytes | None:
    """The picture as PNG, or None if it cannot be drawn. Remembered by exact bytes for pictures of
    ordinary size (a seal's picture is the same in every document it seals; the cache stays small)."""
    return _remembered(data) if len(data) <= MAX_REMEMBERED_BYTES else _drawn(data)


@lru_cache(maxsize=32)
def _remembered(data: bytes) -> bytes | None:
    return _drawn(data)


def _drawn(data: bytes) -> bytes | None:
    try:
        with _RENDERING:
            return _render(data)
    except (ValueError, TypeError, KeyError, OSError, EOFError, ArithmeticError, NotImplementedError,
            zipfile.BadZipFile, Image.DecompressionBombError) as exc:  # fmt: skip
        log.debug("OFD seal picture not rendered: %s", exc)  # the report shows a placeholder instead
        return None
