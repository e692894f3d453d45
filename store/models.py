"""SQLAlchemy 2 models: what the CA, seals and the ledger remember. No behaviour lives here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite drops tzinfo on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        from datetime import UTC

        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


class Base(DeclarativeBase):
    pass


class CertificateAuthority(Base):
    __tablename__ = "cas"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent: Mapped[str | None] = mapped_column(ForeignKey("cas.name"), nullable=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    key_ref: Mapped[str] = mapped_column(String(128))  # name@version in custody
    region_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    region_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    certificate_serial: Mapped[str] = mapped_column(String(64))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    ocsp_key_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ocsp_certificate_der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # [{"status": "granted" | "withdrawn", "from": ISO time}], oldest first; None means granted at created_at
    status_history: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    # the CRL scope of the current key ("" for the key the CA was created with: /v1/cas/{ca}/crl; then
    # "k<version>": /v1/cas/{ca}/crl/k<version>) and the keys it rolled over from (ca/rollover.py), oldest
    # first: [{"key_ref", "crl_scope", "certificate_serial", "ocsp_key_ref", "ocsp_certificate_serial", "until"}]
    crl_scope: Mapped[str] = mapped_column(String(32), default="", server_default="")
    previous_keys: Mapped[list[dict[str, str | None]] | None] = mapped_column(JSON, nullable=True)
    # True once `trustseal ca ceremony move-offline` took its key out of online custody (ca/ceremony.py):
    # whatever it must sign becomes a ceremony request
    offline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Certificate(Base):
    __tablename__ = "certificates"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)  # lowercase hex, unique across CAs
    issuer_ca: Mapped[str | None] = mapped_column(ForeignKey("cas.name"), nullable=True, index=True)
    subject: Mapped[str] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(String(64))
    algorithm: Mapped[str] = mapped_column(String(16))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="good")  # good | revoked
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # when trust ended, if before revoked_at (a compromise found late): the CRL entry's invalidityDate
    invalidity_date: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    is_ca: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the CA key (custody `name@version`) that signed it: picks its CRL scope and OCSP signer after a rollover
    issuer_key_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # the CRL scope that lists it (ca/crl.py): its key's base list or a partition (`p3`, `k2-p1`), decided
    # at issuance (ca/partitions.py) and written into its distribution point; None: its key's base list
    crl_scope: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (
        Index("ix_certificates_issuer_status", "issuer_ca", "status"),
        Index("ix_certificates_issuer_crl_scope", "issuer_ca", "crl_scope"),
    )


class CRL(Base):
    __tablename__ = "crls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ca_name: Mapped[str] = mapped_column(ForeignKey("cas.name"), index=True)
    number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[datetime] = mapped_column(UTCDateTime())
    next_update: Mapped[datetime] = mapped_column(UTCDateTime())
    der: Mapped[bytes] = mapped_column(LargeBinary)
    # which CA key's certificates it lists (CertificateAuthority.crl_scope); numbers stay per CA, so they
    # rise within every scope too (RFC 5280 §5.2.3)
    scope: Mapped[str] = mapped_column(String(32), default="", server_default="")

    __table_args__ = (
        UniqueConstraint("ca_name", "number", name="uq_crl_number"),
        Index("ix_crls_ca_scope_number", "ca_name", "scope", "number"),
    )


class OCSPResponse(Base):
    """A pre-signed OCSP response (ca/ocsp_store.py, Boulder's model): one per certificate, CA key (the
    CertID's hash algorithm and issuerKeyHash) and signer; served while `status` still equals the
    certificate's status and `next_update` is ahead, re-signed by the scheduler before half its validity."""

    __tablename__ = "ocsp_responses"

    serial: Mapped[str] = mapped_column(ForeignKey("certificates.serial"), primary_key=True)
    hash_algorithm: Mapped[str] = mapped_column(String(16), primary_key=True)  # the CertID's, e.g. sha1+null
    issuer_key_hash: Mapped[str] = mapped_column(String(128), primary_key=True)  # hex, under hash_algorithm
    signer: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the OCSP signer certificate that signed it
    status: Mapped[str] = mapped_column(String(16))  # the certificate's status it states: good | revoked
    this_update: Mapped[datetime] = mapped_column(UTCDateTime())
    next_update: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)  # the whole OCSPResponse, served as stored


class Event(Base):
    """One row per certificate / seal / key event, and its entry in the ledger.

    A row is inserted with `ledger_index` NULL in the business transaction (that is its place in the
    sequencer's queue); the sequencer (ledger/sequencer.py) later gives it the next dense index and
    stores `leaf_input`, the exact bytes hashed as the Merkle leaf. Neither changes afterwards."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_ledger_index", "ledger_index", unique=True),
        # The queue: only the rows still waiting for an index, in id order.
        Index(
            "ix_events_unsequenced",
            "id",
            sqlite_where=text("ledger_index IS NULL"),
            postgresql_where=text("ledger_index IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    leaf_input: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ApiToken(Base):
    """One bearer token (its SHA-256 only). `id` is the public token id the log names; `name` is the
    holder's identity (licence ownership, seal `allowed_callers`, batch-job owner), unique among the
    tokens not revoked, so a rotation's new token takes over the name of the one it revokes."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        Index(
            "uq_api_tokens_live_name",
            "name",
            unique=True,
            sqlite_where=text("NOT disabled"),
            postgresql_where=text("NOT disabled"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the bearer token
    seal_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)  # revoked
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # NULL: never
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # to the minute
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(160), nullable=True)


class SealMaker(Base):
    """The seal-maker (制章者) of one issuing CA: its key signs every SESeal made under that CA."""

    __tablename__ = "seal_makers"

    ca_name: Mapped[str] = mapped_column(ForeignKey("cas.name"), primary_key=True)
    key_ref: Mapped[str] = mapped_column(String(128))
    certificate_serial: Mapped[str] = mapped_column(ForeignKey("certificates.serial"))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Seal(Base):
    """An electronic seal (GB/T 38540 SESeal) and its lifecycle.

    requested → active → suspended ⇄ active; any → revoked (final); expired once past valid_end.
    """

    __tablename__ = "seals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    es_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(256))
    seal_type: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(64))
    shape: Mapped[str] = mapped_column(String(16))  # round | square
    organisation_name: Mapped[str] = mapped_column(String(256))
    organisation_uscc: Mapped[str] = mapped_column(String(18), index=True)
    region_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    ca_name: Mapped[str] = mapped_column(ForeignKey("cas.name"))
    algorithm: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    valid_start: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_end: Mapped[datetime] = mapped_column(UTCDateTime())
    key_ref: Mapped[str] = mapped_column(String(128))  # the holder's signing key in custody
    certificate_serial: Mapped[str] = mapped_column(ForeignKey("certificates.serial"))
    maker_certificate_serial: Mapped[str] = mapped_column(ForeignKey("certificates.serial"))
    esl_der: Mapped[bytes] = mapped_column(LargeBinary)
    picture_png: Mapped[bytes] = mapped_column(LargeBinary)
    width_mm: Mapped[int] = mapped_column(Integer)
    height_mm: Mapped[int] = mapped_column(Integer)
    allowed_callers: Mapped[list[str]] = mapped_column(JSON)  # token names that may seal with it
    # earlier SESeals of a re-keyed seal (seal/service.py rekey): their SM3, key, holder and maker serials
    previous_versions: Mapped[list[dict[str, str]] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    status_reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Licence(Base):
    """An electronic licence (电子证照) issued with a seal; status 01 valid, 02 suspended, 03 revoked."""

    __tablename__ = "licences"

    identifier: Mapped[str] = mapped_column(String(160), primary_key=True)
    type_code: Mapped[str] = mapped_column(String(21), index=True)
    type_name: Mapped[str] = mapped_column(String(128))
    number: Mapped[str] = mapped_column(String(64))
    holder_name: Mapped[str] = mapped_column(String(256))  # personal data: only here, never in events
    holder_id: Mapped[str] = mapped_column(String(64))
    holder_id_type: Mapped[str] = mapped_column(String(32))
    issuer_name: Mapped[str] = mapped_column(String(256))
    issuer_uscc: Mapped[str] = mapped_column(String(18), index=True)
    issue_date: Mapped[str] = mapped_column(String(10))  # ISO date
    valid_from: Mapped[str] = mapped_column(String(10))
    valid_to: Mapped[str | None] = mapped_column(String(10), nullable=True)  # None: no expiry
    status: Mapped[str] = mapped_column(String(2))
    status_reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    seal_id: Mapped[str] = mapped_column(ForeignKey("seals.id"))
    owner: Mapped[str] = mapped_column(String(128))  # the issuing system (token name) that may change it
    document_sm3: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TimestampUnit(Base):
    """A timestamping unit (RFC 3161 TSA) per key family; its certificate comes from the tsa profile."""

    __tablename__ = "tsa_units"

    family: Mapped[str] = mapped_column(String(16), primary_key=True)
    ca_name: Mapped[str] = mapped_column(ForeignKey("cas.name"))
    key_ref: Mapped[str] = mapped_column(String(128))
    certificate_serial: Mapped[str] = mapped_column(ForeignKey("certificates.serial"))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrustListRecord(Base):
    """Every trust list ever published; the sequence only grows."""

    __tablename__ = "trust_lists"

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_update: Mapped[datetime] = mapped_column(UTCDateTime())
    ca_stamp: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)


class LedgerNode(Base):
    """The hash of one complete subtree of the ledger's Merkle tree: (level, index) covers leaves
    [index·2^level, (index+1)·2^level); level 0 holds the leaf hashes. Written once, never updated."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(64))


class Approval(Base):
    """One M-of-N approval of a dangerous operation (api/approvals.py). `params` is what the operation
    will be given (never a secret: a token's SHA-256 at most); `approvals` the names that consented,
    the requester first; `version` grows with every change, so two deciders cannot both win (the
    compare-and-swap in api/approvals.py). Status: pending → executing → executed | failed, or
    pending → rejected | expired."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    requester: Mapped[str] = mapped_column(String(128))
    requester_actor: Mapped[str] = mapped_column(String(160))
    required: Mapped[int] = mapped_column(SmallInteger)
    approvals: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(256), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CeremonyRequest(Base):
    """Something an offline CA must sign (ca/ceremony.py): the exact TBS bytes (a TBSCertificate or a
    TBSCertList), the key version that must sign them, and what completing it does (`params`). Status:
    pending → completed, pending → superseded (a newer CRL request replaced it), or pending → cancelled
    (`POST /v1/ceremonies/{id}/cancel`)."""

    __tablename__ = "ceremony_requests"
    __table_args__ = (
        Index("ix_ceremony_requests_status_created", "status", "created_at"),
        # One pending request per (operation, subject), even with two writers racing.
        Index(
            "uq_ceremony_requests_pending",
            "operation",
            "subject",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))  # one pending request per (operation, subject)
    ca_name: Mapped[str] = mapped_column(ForeignKey("cas.name"))
    key_ref: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # certificate | crl
    tbs_der: Mapped[bytes] = mapped_column(LargeBinary)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(160), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class WitnessHead(Base):
    """Witness side (ledger/witness.py): the latest checkpoint this instance cosigned for another
    region's log, per origin. Advanced only by compare-and-swap on (size, root_hash)."""

    __tablename__ = "witness_logs"

    origin: Mapped[str] = mapped_column(String(128), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(64))
    note: Mapped[str] = mapped_column(Text)  # the signed note cosigned last: evidence if the log forks
    key_id: Mapped[str] = mapped_column(String(64))  # the log key that signed it
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    cosigned_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WitnessAlarm(Base):
    """One alarm per (origin, refused note): a replayed refusal records no second event."""

    __tablename__ = "witness_alarms"

    origin: Mapped[str] = mapped_column(String(128), primary_key=True)
    note_sm3: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerCosignature(Base):
    """Log side (ledger/cosigning.py): a witness's verified cosignature over one of our notes."""

    __tablename__ = "ledger_cosignatures"

    note_sm3: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex SM3 of the note's UTF-8
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the witness key
    witness: Mapped[str] = mapped_column(String(256))
    size: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
