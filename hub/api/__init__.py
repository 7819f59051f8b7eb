"""The JSON admin API under /api/v1: events, deliveries and replay, rules, simulate, stats."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from hub.api.audit import list_audit_endpoint
from hub.api.auth import BearerAuth
from hub.api.deliveries import (
    get_delivery_endpoint,
    list_deliveries_endpoint,
    replay_many_endpoint,
    replay_one_endpoint,
)
from hub.api.events import get_event_endpoint, list_events_endpoint
from hub.api.openapi import openapi_endpoint
from hub.api.rules import reload_endpoint, rules_endpoint, simulate_endpoint
from hub.api.stats import stats_endpoint
from hub.auth.credentials import Credentials
from hub.auth.throttle import FailureThrottle

PREFIX = "/api/v1"


def api_mount(credentials: Credentials, throttle: FailureThrottle) -> Mount:
    """All API routes, behind bearer-token auth and the roles of `hub.auth.roles`."""
    return Mount(
        PREFIX,
        routes=[
            Route("/events", list_events_endpoint, methods=["GET"]),
            Route("/events/{event_id}", get_event_endpoint, methods=["GET"]),
            Route("/deliveries", list_deliveries_endpoint, methods=["GET"]),
            Route("/deliveries/{delivery_id}", get_delivery_endpoint, methods=["GET"]),
            Route("/deliveries/{delivery_id}/replay", replay_one_endpoint, methods=["POST"]),
            Route("/replay", replay_many_endpoint, methods=["POST"]),
            Route("/rules", rules_endpoint, methods=["GET"]),
            Route("/rules/reload", reload_endpoint, methods=["POST"]),
            Route("/simulate", simulate_endpoint, methods=["POST"]),
            Route("/stats", stats_endpoint, methods=["GET"]),
            Route("/audit", list_audit_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                BearerAuth,
                credentials=credentials,
                throttle=throttle,
            )
        ],
    )
