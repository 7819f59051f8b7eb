"""Google Calendar responses to SendResults: rate limits, retryable and permanent errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from connectors._gcal_calendar import Calendar
from connectors.base import (
    DeliveryContext,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    response_object,
    retry,
)

#: 403 reasons that mean "slow down", not "not allowed" (guides/errors#403).
RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)


def classify_gcal(
    response: httpx.Response, ctx: DeliveryContext, cal: Calendar, *, doing: str
) -> SendResult:
    """Map Google's answer to ok(event id) / retry(after) / fail(reason)."""
    status = response.status_code
    data = response_object(response)
    if response.is_success:
        ref = data.get("id") if isinstance(data.get("id"), str) else None
        return ok(ref, status_code=status)
    reason, message = _error_of(data, response)
    where = f"{doing} in calendar '{cal.name}'"
    detail = cal.redact(f"{message} ({reason})" if reason else message)
    after = parse_retry_after(response.headers.get("retry-after"), now=ctx.now)
    if status == 401:
        return fail(
            f"Google refused the access token (401) {where}: {detail}; check that the "
            "refresh token has the calendar.events scope and is not revoked",
            status_code=401,
        )
    if status in (403, 429) and (status == 429 or reason in RATE_LIMIT_REASONS):
        return retry(after, f"rate limited by Google {where}: {detail}", status_code=status)
    if status == 403:
        return fail(
            f"Google forbids {where}: {detail}; share the calendar with the account "
            "behind the refresh token ('Make changes to events')",
            status_code=403,
        )
    if status == 404:
        return fail(f"not found {where}: {detail}; check calendar_id", status_code=404)
    return classify_status(
        status, reason=f"Google answered {status} {where}: {detail}", after=after
    )


def _error_of(data: Mapping[str, Any], response: httpx.Response) -> tuple[str, str]:
    """(first `errors[].reason`, `message`) of a Google error body."""
    error = data.get("error")
    if not isinstance(error, Mapping):
        return "", (response.text or response.reason_phrase).strip()[:300]
    errors = error.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else {}
    reason = str(first.get("reason") or "") if isinstance(first, Mapping) else ""
    return reason, str(error.get("message") or response.reason_phrase)[:300]
