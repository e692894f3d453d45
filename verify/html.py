"""The readable report: one self-contained HTML page (no external resources) for a service hall."""

from __future__ import annotations

from html import escape
from typing import Any

from verify.report import EXPLANATIONS, Report

VERDICT = {
    "PASSED": ("#1b7f3b", "验证通过", "Valid"),
    "FAILED": ("#b3261e", "验证失败", "Not valid"),
    "INDETERMINATE": ("#b26a00", "无法确定", "Cannot be confirmed"),
}
STATUS = {"PASSED": ("✔", "#1b7f3b"), "FAILED": ("✘", "#b3261e"), "INDETERMINATE": ("?", "#b26a00"),
          "SKIPPED": ("–", "#777")}  # fmt: skip
CHECK_LABELS = {
    "format": ("格式", "Format"),
    "integrity": ("完整性", "Integrity"),
    "references": ("受保护文件", "Protected files"),
    "signature": ("签名", "Signature"),
    "seal": ("印章", "Seal"),
    "seal_validity": ("印章有效期", "Seal validity"),
    "chain": ("证书链", "Certificate chain"),
    "revocation": ("吊销状态", "Revocation"),
    "signing_time": ("签章时间", "Signing time"),
    "modifications": ("签后修改", "Changes after sealing"),
    "licence_status": ("证照状态", "Licence status"),
    "signatures": ("签章数量", "Signatures"),
}


def _explain(code: str, detail: str) -> str:
    zh, en = EXPLANATIONS.get(code, ("", ""))
    text = f"{zh} / {en}" if zh else code
    return f"{escape(text)}<br><small>{escape(detail)}</small>" if detail else escape(text)


def _seal_box(size_mm: Any) -> tuple[int, int]:
    """The picture's box: 120 px on its longer side, in the seal's own proportions (invoice seals are
    ovals of 30 x 20 mm)."""
    try:
        w, h = (float(v) for v in size_mm)
    except (TypeError, ValueError):
        return 120, 120
    if not (0 < w < 1000 and 0 < h < 1000):
        return 120, 120
    return (120, max(1, round(120 * h / w))) if w >= h else (max(1, round(120 * w / h)), 120)


def _signature(index: int, signature: dict[str, Any]) -> str:
    colour, zh, en = VERDICT[signature["result"]]
    seal = signature.get("seal") or {}
    picture = seal.get("picture")
    width, height = _seal_box(seal.get("size_mm"))
    image = (
        f'<img src="{escape(picture)}" alt="seal" width="{width}" height="{height}">'
        if picture
        else '<div class="placeholder">印章图像<br>seal picture<br>not shown</div>'
    )
    signer = signature.get("signer") or {}
    rows = []
    for check in signature["checks"]:
        mark, mark_colour = STATUS.get(check["status"], ("?", "#777"))
        label_zh, label_en = CHECK_LABELS.get(check["name"], (check["name"], check["name"]))
        rows.append(
            f'<tr><td style="color:{mark_colour};font-weight:bold">{mark}</td>'
            f"<td>{escape(label_zh)}<br><small>{escape(label_en)}</small></td>"
            f"<td>{_explain(check['code'], check['detail'])}</td></tr>"
        )
    facts = [
        ("印章 Seal", seal.get("name")),
        ("签章人 Signer", signer.get("common_name")),
        ("单位 Organisation", signer.get("organization")),
        ("统一社会信用代码 USCC", signer.get("organization_identifier")),
        ("地区 Region", signature.get("region")),
        ("签章时间 Signing time", f"{signature.get('signing_time')} ({signature.get('signing_time_source')})"),
        ("同一签名的其他域 Other fields with this signature", ", ".join(signature.get("also_fields") or [])),
    ]
    fact_rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts if v)
    return (
        f'<section><h2 style="color:{colour}">#{index + 1} {escape(zh)} · {escape(en)}</h2>'
        f'<div class="head">{image}<table class="facts">{fact_rows}</table></div>'
        f'<table class="checks">{"".join(rows)}</table></section>'
    )


def _sub(data: dict[str, Any]) -> str:
    code = data.get("subindication")
    return f' <small style="color:white">({escape(code)})</small>' if code else ""


def _as_of(data: dict[str, Any]) -> str:
    """A validation as of a past time the caller chose says so before anything else."""
    if not data.get("as_of"):
        return ""
    when = escape(str(data["as_of"]))
    return (
        f'<div class="as-of">截至 {when} 的验证结果（调用方指定的时间，并非当前时间）<br>'
        f"Validated AS OF {when}, a time the caller gave — not as of now</div>"
    )


def _document(data: dict[str, Any]) -> str:
    """Document-level checks, and active content (flagged; it does not change the verdict)."""
    out = "".join(
        f"<p>{escape(CHECK_LABELS.get(c['name'], (c['name'],))[0])}: {_explain(c['code'], c['detail'])}</p>"
        for c in data.get("checks", [])
        if c["code"] != data.get("code")  # (a document-level code is shown once, below)
    )
    active = data.get("active_content")
    if active:
        items = "".join(f"<li>{escape(item)}</li>" for item in active)
        out += (
            '<section class="active"><h2>⚠ 含有活动内容 · Active content</h2>'
            "<p>文件含有可自动运行或打开的内容（不影响签章验证结论），打开前请注意。<br>"
            "<small>The document carries content a viewer may run or open by itself; it does not change "
            f"the verdict on the seals. Open it with care.</small></p><ul>{items}</ul></section>"
        )
    return out


def render(report: Report, filename: str = "") -> str:
    data = report.as_json()
    colour, zh, en = VERDICT[data["result"]]
    body = _document(data) + "".join(_signature(i, s) for i, s in enumerate(data["signatures"]))
    if not data["signatures"]:
        body += f"<p>{_explain(data.get('code', 'NO_SIGNATURE_FOUND'), data.get('detail', ''))}</p>"
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>验证报告 Verification report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
  margin: 2em auto; max-width: 60em; color: #222; }}
.verdict {{ background: {colour}; color: white; padding: 1em 1.5em; border-radius: 8px; font-size: 1.6em; }}
section {{ border: 1px solid #ddd; border-radius: 8px; margin: 1.5em 0; padding: 1em 1.5em; }}
.head {{ display: flex; gap: 2em; align-items: center; }}
.placeholder {{ width: 120px; height: 120px; border: 2px dashed #c00; color: #c00; text-align: center;
  display: flex; align-items: center; justify-content: center; border-radius: 50%; font-size: .8em; }}
table {{ border-collapse: collapse; }} th {{ text-align: left; padding-right: 1em; color: #555; font-weight: normal; }}
.checks td {{ border-top: 1px solid #eee; padding: .5em; vertical-align: top; }}
small {{ color: #666; }}
.as-of {{ border: 3px solid #b26a00; background: #fff4e0; padding: .8em 1.2em; margin: 1em 0;
  border-radius: 8px; font-weight: bold; font-size: 1.2em; }}
.active {{ border-color: #b26a00; background: #fff8ec; }}
</style></head><body>
<div class="verdict">{escape(zh)} · {escape(en)}{_sub(data)}</div>
{_as_of(data)}
<p>文件 File: {escape(filename)} · 格式 Format: {escape(data["format"])}</p>
{body}
</body></html>
"""
