"""Document-sealing errors, each with a stable `code` that api/ turns into problem+json."""

from __future__ import annotations


class SigningError(Exception):
    code = "signing_error"
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PdfMalformed(SigningError):
    code = "pdf_malformed"


class PdfEncrypted(SigningError):
    code = "pdf_encrypted"


class PdfNoPages(SigningError):
    code = "pdf_no_pages"


class PageOutOfRange(SigningError):
    code = "page_out_of_range"


class KeywordNotFound(SigningError):
    code = "keyword_not_found"


class PlacementInvalid(SigningError):
    code = "placement_invalid"
