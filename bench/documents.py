"""Real PDFs for tests and benchmarks, written with pyHanko's writer (no external files)."""

from __future__ import annotations


def make_pdf(lines: list[str] | None = None, pages: int = 1, pad_to: int = 0) -> bytes:
    """A real one-or-more-page A4 PDF with Helvetica text lines (written by pyHanko's writer)."""
    import io

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PdfFileWriter

    writer = PdfFileWriter()
    font = writer.add_object(
        generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Font"),
                generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
                generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
            }
        )
    )
    for number in range(pages):
        text = lines or [f"Business licence page {number + 1}", "Issued by Jinan Market Regulation Bureau"]
        ops = ["BT", "/F1 14 Tf"]
        y = 780
        for line in text:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"1 0 0 1 72 {y} Tm ({escaped}) Tj")
            y -= 24
        ops.append("ET")
        body = "\n".join(ops).encode("latin-1")
        if pad_to and number == 0:  # bulk, as a comment-free extra stream: bigger documents for benchmarks
            body += b"\n" + b"0 0 m\n" * max(0, (pad_to - len(body)) // 6)
        stream = generic.StreamObject(stream_data=body)
        page = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Page"),
                generic.NameObject("/MediaBox"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in (0, 0, 595, 842)]
                ),
                generic.NameObject("/Contents"): writer.add_object(stream),
                generic.NameObject("/Resources"): generic.DictionaryObject(
                    {generic.NameObject("/Font"): generic.DictionaryObject({generic.NameObject("/F1"): font})}
                ),
            }
        )
        writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
