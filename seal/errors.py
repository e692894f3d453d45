"""Seal errors, each with a stable `code` that api/ turns into problem+json."""

from __future__ import annotations


class SealError(Exception):
    code = "seal_error"
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SealNotFound(SealError):
    code = "seal_not_found"
    status = 404


class SealExists(SealError):
    code = "seal_exists"
    status = 409


class SealNotActive(SealError):
    code = "seal_not_active"
    status = 409


class SealExpired(SealError):
    code = "seal_expired"
    status = 409


class SealNotPermitted(SealError):
    code = "seal_not_permitted"
    status = 403


class InvalidSealRequest(SealError):
    code = "invalid_seal_request"


class InvalidTransition(SealError):
    code = "invalid_seal_transition"
    status = 409
