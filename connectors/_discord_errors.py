"""Discord responses to SendResults: status, rate-limit budget and error detail."""

from __future__ import annotations

import re

import httpx

from connectors.base import (
    DeliveryContext,
    SendResult,
    classify_status,
    ok,
    parse_retry_after,
    redact_url,
    retry,
)

_TOKEN_IN_PATH = re.compile(r"/webhooks/\d+/([^/]+)")


def classify_discord(
    response: httpx.Response, ctx: DeliveryContext, secret: str | None = None
) -> SendResult:
    """Map Discord's answer to ok / retry(after) / fail."""
    if response.is_success:
        message_id = None
        try:
            data = response.json()
            message_id = str(data["id"]) if isinstance(data, dict) and "id" in data else None
        except ValueError:
            message_id = None
        return ok(message_id, status_code=response.status_code, pause_s=_spent_budget(response))
    # The request's URL is read only to explain a failure (building it costs a parse).
    where = redact_url(response.request.url)
    token = _TOKEN_IN_PATH.search(response.request.url.path)
    detail = _error_detail(response)
    if token:
        # Discord or a proxy in front of it may quote the request path in an error page.
        detail = detail.replace(token.group(1), "REDACTED")
    if secret:
        detail = detail.replace(secret, "REDACTED")
    if response.status_code == 429:
        return retry(
            _retry_after(response, ctx), f"rate limited by Discord ({detail})", status_code=429
        )
    return classify_status(
        response.status_code,
        reason=f"Discord answered {response.status_code} for {where}: {detail}",
    )


def _spent_budget(response: httpx.Response) -> float | None:
    """Seconds until the bucket refills when Discord says it is empty, else None.

    Learning from `X-RateLimit-Remaining: 0` lets every worker hold off before the
    next request turns into a 429, whatever limits the destination was configured with.
    """
    if response.headers.get("x-ratelimit-remaining", "").strip() != "0":
        return None
    try:
        reset_after = float(response.headers.get("x-ratelimit-reset-after", ""))
    except ValueError:
        return None
    return reset_after if 0 < reset_after < 3600 else None


def _retry_after(response: httpx.Response, ctx: DeliveryContext) -> float | None:
    """The most precise wait Discord gave: body `retry_after`, then the headers."""
    try:
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("retry_after"), int | float):
            return float(data["retry_after"])
    except ValueError:
        pass
    reset_after = parse_retry_after(response.headers.get("x-ratelimit-reset-after"), now=ctx.now)
    if reset_after is not None:
        return reset_after
    return parse_retry_after(response.headers.get("retry-after"), now=ctx.now)


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(data, dict) and "message" in data:
        code = f" (code {data['code']})" if "code" in data else ""
        return f"{str(data['message'])[:200]}{code}"
    return response.text[:200]
