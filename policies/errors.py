"""What a policy refuses, with the stable code the API answers (problem+json `code`)."""

from __future__ import annotations


class NameRefused(ValueError):
    """A subject or subjectAltName value the name policy does not allow. `code` is part of the API."""

    def __init__(self, code: str, detail: str, *, status: int = 400) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
