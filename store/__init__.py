"""Persistence: SQLAlchemy 2 models, sessions and Alembic migrations."""

from store.db import Database
from store.models import CRL, ApiToken, Base, Certificate, CertificateAuthority, Event

__all__ = ["CRL", "ApiToken", "Base", "Certificate", "CertificateAuthority", "Database", "Event"]
