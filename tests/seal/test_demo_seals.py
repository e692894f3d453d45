"""The demo seals `trustseal init --if-needed` makes (every `make run`): a withdrawn demo CA makes none,
and the others are still made (it used to stop the whole init with CAWithdrawn)."""

from __future__ import annotations

from api.context import Context
from ca.withdrawal import withdraw_ca
from seal.demo import create_demo_seals, demo_seal_ids
from seal.errors import SealNotFound


def test_demo_seals_skip_a_withdrawn_ca(context: Context) -> None:
    withdraw_ca(context.ca, "cn-370000-p256", reason="caCompromise", invalidity_date=None, actor="test",
                publisher=None)  # fmt: skip
    made = create_demo_seals(context.seals, actor="test")
    assert set(made) == set(demo_seal_ids()) - {"demo-370000-p256"}
    try:
        context.seals.get("demo-370000-p256")
        raise AssertionError("a withdrawn CA made a seal")
    except SealNotFound:
        pass
