"""The OpenAI contract on the configured deployment (see conftest.py), with the official client."""

from __future__ import annotations

import pytest

from .contract import CHECKS, Target, not_applicable


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_openai_contract(conformance_target: Target, check: str) -> None:
    reason = not_applicable(conformance_target, check)
    if reason:
        pytest.skip(f"not applicable to the {conformance_target.payload} payload: {reason}")
    CHECKS[check](conformance_target)
