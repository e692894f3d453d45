"""verify/ofd_picture.py: OFD-format seal pictures drawn as their XML says, and untrusted packages never
crashing it. The vendor seals of ../shared/interop/ofd are the real-world cases; crafted packages pin the
geometry (there is no independent OFD renderer on this machine to compare with)."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gm import ses
from verify import ofd_picture, seal_checks

INTEROP = Path(__file__).resolve().parents[3] / "shared" / "interop" / "ofd"
PX = ofd_picture.PX_PER_MM


def _vendor_seal(name: str) -> ses.Seal:
    package = zipfile.ZipFile(io.BytesIO((INTEROP / name).read_bytes()))
    signed_value = next(n for n in package.namelist() if n.endswith("SignedValue.dat"))
    return ses.parse_ses_signature(package.read(signed_value)).seal


def _png(data: bytes | None) -> Image.Image:
    assert data is not None
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "RGBA"
    return image


def _red(image: Image.Image, x_mm: float, y_mm: float, radius_px: int = 2) -> bool:
    """Some strongly red, opaque pixel within `radius_px` of the point."""
    cx, cy = round(x_mm * PX), round(y_mm * PX)
    for x in range(max(0, cx - radius_px), min(image.width, cx + radius_px + 1)):
        for y in range(max(0, cy - radius_px), min(image.height, cy + radius_px + 1)):
            r, g, b, a = image.getpixel((x, y))  # type: ignore[misc]
            if a > 128 and r > 150 and g < 100 and b < 100:
                return True
    return False


def _package(content: str, box: str = "0 0 40 30", files: dict[str, bytes] | None = None, res: str = "") -> bytes:
    ns = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    parts = {
        "OFD.xml": f"<ofd:OFD {ns}><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        "Doc_0/Document.xml": f"<ofd:Document {ns}><ofd:CommonData><ofd:PageArea><ofd:PhysicalBox>{box}"
        "</ofd:PhysicalBox></ofd:PageArea>"
        + ("<ofd:PublicRes>PublicRes_0.xml</ofd:PublicRes>" if res else "")
        + '</ofd:CommonData><ofd:Pages><ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages>'
        "</ofd:Document>",
        "Doc_0/Pages/Page_0/Content.xml": f'<ofd:Page {ns}><ofd:Content><ofd:Layer ID="2">{content}</ofd:Layer>'
        "</ofd:Content></ofd:Page>",
    }
    if res:
        parts["Doc_0/PublicRes_0.xml"] = f'<ofd:Res {ns} BaseLoc="Res">{res}</ofd:Res>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text.encode())
        for name, data in (files or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(("name", "region"), [("1.ofd", "浙江省"), ("999.ofd", "重庆市")])
def test_the_vendor_invoice_seals_are_drawn_as_their_xml_says(name: str, region: str) -> None:
    seal = _vendor_seal(name)
    assert seal.picture_type == "ofd"
    image = _png(ofd_picture.render_png(seal.picture))
    assert image.size == (30 * PX, 20 * PX)  # the page's PhysicalBox, 0 0 30 20
    # the outer ellipse (path 23, boundary -0.5 -0.5): its points at (30.0, 10.5), (15.5, 20.0) and (1.0, 10.5)
    for x, y in ((29.5, 10.0), (15.0, 19.5), (0.5, 10.0), (15.0, 0.5)):
        assert _red(image, x, y), (x, y)
    # glyphs: "全" at the left end of the upper arc, "国" of 国家税务总局 at its start, the region's name below
    assert _red(image, 3.8, 8.2, radius_px=12) and _red(image, 8.6, 11.5, radius_px=12)
    assert not _red(image, 15.0, 6.5, radius_px=3)  # between the arc and the middle line: empty
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]  # outside the ellipse: transparent
    png = ofd_picture.render_png(seal.picture)
    assert (
        png is not None
        and seal_checks.describe(seal)["picture"] == "data:image/png;base64," + base64.b64encode(png).decode()
    )
    assert seal.name.endswith(region + "税务局") and (seal.width_mm, seal.height_mm) == (30, 20)


def test_paths_text_and_images_of_a_crafted_picture() -> None:
    tile = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(tile, "PNG")
    content = (
        '<ofd:PathObject ID="3" Boundary="0 0 40 30" LineWidth="1"><ofd:StrokeColor Value="255 0 0"/>'
        "<ofd:AbbreviatedData>M 5 5 L 35 5 L 35 25 C</ofd:AbbreviatedData></ofd:PathObject>"
        '<ofd:PathObject ID="4" Boundary="10 10 10 10" Stroke="false" Fill="true"><ofd:FillColor Value="255 0 0"/>'
        "<ofd:AbbreviatedData>M 0 0 L 4 0 L 4 4 L 0 4 C</ofd:AbbreviatedData></ofd:PathObject>"
        '<ofd:ImageObject ID="5" Boundary="30 20 5 5" CTM="5 0 0 5 0 0" ResourceID="9"/>'
        '<ofd:TextObject ID="6" Boundary="0 0 40 30" Size="6"><ofd:FillColor Value="255 0 0"/>'
        '<ofd:TextCode X="2" Y="28">印</ofd:TextCode></ofd:TextObject>'
    )
    res = '<ofd:MultiMedias><ofd:MultiMedia ID="9" Type="Image"><ofd:MediaFile>tile.png</ofd:MediaFile>' \
          "</ofd:MultiMedia></ofd:MultiMedias>"  # fmt: skip
    image = _png(ofd_picture.render_png(_package(content, files={"Doc_0/Res/tile.png": tile.getvalue()}, res=res)))
    assert image.size == (40 * PX, 30 * PX)
    assert _red(image, 20, 5) and _red(image, 35, 15) and _red(image, 20, 15)  # edges of the closed triangle
    assert not _red(image, 5, 15, radius_px=3)  # outside it
    assert _red(image, 12, 12, radius_px=0) and not _red(image, 9, 12, radius_px=0)  # the filled square only
    assert image.getpixel((round(32.5 * PX), round(22.5 * PX)))[:3] == (0, 0, 255)  # type: ignore[index]
    assert _red(image, 5, 25.5, radius_px=20)  # the glyph, baseline at y 28, 6 mm high


def _image(kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(out, kind, **options)
    return out.getvalue()


def _with_image(data: bytes, name: str = "img.bin") -> bytes:
    return _package(
        '<ofd:ImageObject ID="5" Boundary="0 0 5 5" CTM="5 0 0 5 0 0" ResourceID="9"/>',
        files={f"Doc_0/Res/{name}": data},
        res=f'<ofd:MultiMedias><ofd:MultiMedia ID="9"><ofd:MediaFile>{name}</ofd:MediaFile></ofd:MultiMedia>'
        "</ofd:MultiMedias>",
    )


def test_images_are_read_only_when_drawn_and_only_in_plain_formats() -> None:
    """Found in review: every MultiMedia was read before drawing (one upload: gigabytes); and any
    Pillow plugin could see the bytes (EPS starts Ghostscript where installed)."""
    unused = _package(
        "",
        res='<ofd:MultiMedias><ofd:MultiMedia ID="9"><ofd:MediaFile>missing.png</ofd:MediaFile></ofd:MultiMedia>'
        "</ofd:MultiMedias>",
    )
    assert ofd_picture.render_png(unused) is not None  # named, never drawn, never read
    assert ofd_picture.render_png(_with_image(_image("PNG"))) is not None
    assert ofd_picture.render_png(_with_image(_image("JPEG"))) is not None
    for refused in (
        _image("TIFF"),
        _image("JPEG", progressive=True),
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n",
    ):
        assert ofd_picture.render_png(_with_image(refused)) is None


def test_parts_larger_than_a_seal_picture_needs_are_refused_before_inflating() -> None:
    """Found in review: a 127 MB page of <a/> (1.6 MB compressed) was parsed whole (39 s, 3 GB)."""
    big_page = _package("<ofd:Layer/>" * (ofd_picture.MAX_PART_BYTES // 12 + 1))
    assert ofd_picture.render_png(big_page) is None
    assert ofd_picture.render_png(_with_image(b"\x00" * (ofd_picture.MAX_IMAGE_BYTES + 1))) is None
    too_much = _package("", files={f"pad{k}.bin": b"\x00" * (1 << 20) for k in range(9)})
    assert ofd_picture.render_png(too_much) is None
    assert ofd_picture.render_png(_package("", files={"pad.bin": b"\x00" * (1 << 20)})) is not None


def _large_image() -> bytes:
    out = io.BytesIO()
    Image.new("L", (3000, 2000), 255).save(out, "PNG")
    return out.getvalue()


_LARGE_IMAGE = _large_image()


@pytest.mark.parametrize(
    "package",
    [
        b"",
        b"not a zip at all",
        _package(
            '<ofd:PathObject ID="3" Boundary="0 0 1 1"><ofd:AbbreviatedData>M 0 0 X 1 1</ofd:AbbreviatedData>'
            "</ofd:PathObject>"
        ),
        _package("", box="0 0 5000 5000"),  # a page far larger than a seal
        _package("<ofd:PageBlock>" * 40 + "</ofd:PageBlock>" * 40),  # nested too deeply
        _package(
            '<ofd:TextObject ID="3" Boundary="0 0 1 1" Size="2"><ofd:TextCode X="0" Y="1" DeltaX="g 99999 1">'
            "a</ofd:TextCode></ofd:TextObject>"
        ),
        _package(  # an image of 6 million pixels (a small file: one colour)
            '<ofd:ImageObject ID="5" Boundary="0 0 5 5" CTM="5 0 0 5 0 0" ResourceID="9"/>',
            files={"Doc_0/Res/big.png": _LARGE_IMAGE},
            res='<ofd:MultiMedias><ofd:MultiMedia ID="9"><ofd:MediaFile>big.png</ofd:MediaFile></ofd:MultiMedia>'
            "</ofd:MultiMedias>",
        ),
        _package(
            '<ofd:PathObject ID="3" Boundary="0 0 1 1"><ofd:AbbreviatedData>M 0 0 L 1e400 1</ofd:AbbreviatedData>'
            "</ofd:PathObject>"
        ),
        _package(
            '<ofd:TextObject ID="3" Boundary="0 0 40 30" Size="25"><ofd:TextCode X="0" Y="20">印</ofd:TextCode>'
            "</ofd:TextObject>",
            box="0 0 100 100",
        ),
        _package(
            '<ofd:TextObject ID="3" Boundary="0 0 100 100" Size="10" CTM="0.995 0.0998 -0.0998 0.995 0 0">'
            '<ofd:TextCode X="50" Y="50" DeltaX="g 299 0">' + "国" * 300 + "</ofd:TextCode></ofd:TextObject>",
            box="0 0 100 100",
        ),
        _package(
            "".join(
                f'<ofd:PathObject ID="{k}" Boundary="0 0 100 100" Fill="true" Stroke="false">'
                '<ofd:FillColor Value="255 0 0"/><ofd:AbbreviatedData>M -900 -900 L 900 -900 L 0 900 C'
                "</ofd:AbbreviatedData></ofd:PathObject>"
                for k in range(100)
            ),
            box="0 0 100 100",
        ),
        _package(
            '<ofd:PathObject ID="3" Boundary="0 0 40 30" LineWidth="1000"><ofd:AbbreviatedData>M 0 0 L 1 1'
            "</ofd:AbbreviatedData></ofd:PathObject>"
        ),
    ],
    ids=[
        "empty",
        "garbage",
        "bad path operator",
        "huge page",
        "deep nesting",
        "glyph bomb",
        "pixel bomb",
        "inf",
        "glyphs larger than a seal's",
        "many large rotated glyphs",
        "page-covering fills",
        "a line wider than the page",
    ],
)
def test_pictures_that_cannot_be_drawn_give_none(package: bytes) -> None:
    assert ofd_picture.render_png(package) is None


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_vendor_pictures_never_raise(data: st.DataObject) -> None:
    picture = bytearray(_vendor_seal("1.ofd").picture)
    for _ in range(data.draw(st.integers(1, 4))):
        picture[data.draw(st.integers(0, len(picture) - 1))] = data.draw(st.integers(0, 255))
    result = ofd_picture.render_png(bytes(picture))
    assert result is None or _png(result).size[0] > 0


def test_bezier_points() -> None:
    half = ofd_picture.BEZIER_STEPS // 2 - 1  # the point at t = 1/2
    quadratic = ofd_picture._bezier([(0, 0), (1, 2), (2, 0)])
    cubic = ofd_picture._bezier([(0, 0), (0, 1), (1, 1), (1, 0)])
    assert len(quadratic) == len(cubic) == ofd_picture.BEZIER_STEPS
    assert quadratic[half] == pytest.approx((1, 1)) and quadratic[-1] == pytest.approx((2, 0))
    assert cubic[half] == pytest.approx((0.5, 0.75)) and cubic[-1] == pytest.approx((1, 0))
