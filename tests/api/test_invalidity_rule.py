"""One rule for `invalidity_date` (ca/revocation.py `checked_invalidity_date`): a certificate's revocation, a
CA withdrawal and the approvals' request-time check of a withdrawal accept and refuse exactly the same
moments, because they all ask that one function (a copy of the checks elsewhere would drift)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.context import Context
from api.operations import REGISTRY
from ca import revocation as rev
from ca.errors import InvalidInvalidityDate
from ca.withdrawal import withdraw_ca


class Marker(Exception):
    """What the patched rule raises: proof that a path asked it."""


def _refuse(*_: object, **__: object) -> None:
    raise Marker


def test_every_path_asks_the_one_rule(context: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rev, "checked_invalidity_date", _refuse)
    past = datetime.now(UTC) - timedelta(days=1)
    check = REGISTRY["ca.withdraw"].check
    assert check is not None
    with pytest.raises(Marker):  # the approvals' check, before any approval is opened
        check(context, {"ca": "cn-530000-sm2", "reason": None, "invalidity_date": past.isoformat()})
    with pytest.raises(Marker):  # the withdrawal itself (API direct path, executor, CLI)
        withdraw_ca(context.ca, "cn-530000-sm2", reason=None, invalidity_date=past)
    with pytest.raises(Marker):  # a certificate's revocation
        context.ca.revoke("00", None, invalidity_date=past)
    assert context.ca.ca_status("cn-530000-sm2") == "active"


@pytest.mark.parametrize(
    ("moment", "refused"),
    [
        (datetime.now(UTC) + timedelta(hours=1), True),  # in the future
        (datetime(2026, 1, 1, 0, 0, 0), True),  # no zone
        (datetime(1, 1, 1, tzinfo=UTC), True),  # year 1: GeneralizedTime would not even be DER (review)
        (datetime(1949, 12, 31, 23, 59, 59, tzinfo=UTC), True),  # before any certificate
        (datetime(1950, 1, 1, tzinfo=UTC), False),
        (datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC), False),  # past, any precision
    ],
)
def test_the_rule_refuses_the_same_moments_everywhere(context: Context, moment: datetime, refused: bool) -> None:
    now = datetime.now(UTC)
    params = {"ca": "cn-530000-sm2", "reason": None, "invalidity_date": moment.isoformat()}
    check = REGISTRY["ca.withdraw"].check
    assert check is not None
    if refused:
        with pytest.raises(InvalidInvalidityDate) as direct:
            rev.checked_invalidity_date(moment, now)
        with pytest.raises(InvalidInvalidityDate) as approval:
            check(context, params)
        assert direct.value.code == approval.value.code == "invalid_invalidity_date"
    else:
        assert rev.checked_invalidity_date(moment, now) == moment.replace(microsecond=0)
        check(context, params)  # accepted: an approval may be opened
