"""Document-sealing errors, each with a stable `code` that api/ turns into problem+json."""

from __future__ import annotations


class SigningError(Exception):
    code = "signing_error"
    status = 400

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra  # more machine-readable members of the problem+json body


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


class PdfActiveContent(SigningError):
    """The document would run or open something by itself; sealed only when the caller asks for it."""

    code = "pdf_active_content"
    status = 422


class PdfCertifiedNoChanges(SigningError):
    """A certification signature's DocMDP permissions forbid what sealing would add."""

    code = "pdf_certified_no_changes"
    status = 422


class PdfCertifyNotFirst(SigningError):
    """A certification signature must be a document's first signature."""

    code = "pdf_certify_not_first"
    status = 422
