from __future__ import annotations

from datetime import UTC, datetime

import pytest

# Mid-minute and mid-hour: a test that asks twice never straddles a rate-limit window boundary.
FROZEN_RATE_CLOCK = datetime(2026, 3, 2, 10, 30, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_rate_windows(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr("linli.core.ratelimit.utcnow", lambda: FROZEN_RATE_CLOCK)
    return FROZEN_RATE_CLOCK
