"""When a revoked certificate stopped being trustworthy, as the revocation information says.

RFC 5280 §5.3.2: a CRL entry's invalidityDate is "the date on which it is known or suspected that the private
key was compromised", earlier than the revocationDate when a compromise is found late (our CA writes it for
`invalidity_date` on revocation, withdrawal and a seal re-key with a reason). A signature whose proven time
lies between the two could have been made by whoever held the stolen key: for the verdict the certificate
counts as revoked from the earlier moment. An invalidityDate *after* the revocationDate says nothing more
(revocation already ended trust). RFC 6960 §4.4.5 carries the same extension in an OCSP SingleResponse,
which is not read here: pyHanko takes a `revoked` answer dated after the validation time as no answer at all
(revocation unknown, INDETERMINATE), so with only OCSP at hand such a document is not PASSED either way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asn1crypto import crl


def _earlier(revoked_at: datetime | None, extensions: Any) -> datetime | None:
    invalid_from = None
    for extension in extensions or []:
        if extension["extn_id"].native == "invalidity_date":
            invalid_from = extension["extn_value"].native
    if revoked_at is None:
        return None
    if isinstance(invalid_from, datetime) and invalid_from.tzinfo is not None and invalid_from < revoked_at:
        return invalid_from
    return revoked_at


def crl_entry(entry: crl.RevokedCertificate) -> datetime | None:
    """The moment a CRL entry's certificate is to be taken as revoked from."""
    return _earlier(entry["revocation_date"].native, entry["crl_entry_extensions"])
