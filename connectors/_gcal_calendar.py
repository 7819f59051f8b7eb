"""The gcal destination read into a Calendar: which calendar, as whom, with what defaults."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from connectors._google import (
    DEFAULT_TOKEN_URL,
    GoogleCredentials,
    ServiceAccount,
    UserGrant,
)
from connectors.base import (
    Destination,
    secret_option,
)

DEFAULT_API_URL = "https://www.googleapis.com/calendar/v3"

#: What a service account asks for: read and write events (not calendar settings).
SCOPE = "https://www.googleapis.com/auth/calendar.events"


@dataclass(frozen=True, slots=True)
class Calendar:
    """Where and as whom to write, read once per send from the destination."""

    name: str
    calendar_id: str
    api_url: str
    client: GoogleCredentials
    timezone: str | None
    send_updates: str

    @property
    def events_url(self) -> str:
        return f"{self.api_url}/calendars/{quote(self.calendar_id, safe='')}/events"

    def redact(self, text: str) -> str:
        for secret in self.client.secrets():
            text = text.replace(secret, "REDACTED")
        return text


def read_calendar(destination: Destination | None) -> Calendar:
    """The destination's settings, or ValueError saying what to fix."""
    if destination is None:
        raise ValueError("gcal action has no destination ('calendar')")
    name = destination.name
    options = destination.options
    token_url = str(options.get("token_url") or DEFAULT_TOKEN_URL)
    client: GoogleCredentials
    key = secret_option(destination, "service_account")
    if key is not None:
        subject = options.get("subject")
        client = ServiceAccount.from_key(
            key,
            scopes=(SCOPE,),
            subject=str(subject) if subject else None,
            token_url=str(options["token_url"]) if options.get("token_url") else None,
        )
    else:
        raw_id = options.get("client_id")
        client_id = secret_option(destination, "client_id") if hasattr(raw_id, "reveal") else raw_id
        client_secret = secret_option(destination, "client_secret")
        refresh_token = secret_option(destination, "refresh_token")
        if (
            not isinstance(client_id, str)
            or not client_id
            or not client_secret
            or not refresh_token
        ):
            raise ValueError(
                f"gcal destination '{name}' needs service_account, or client_id, "
                "client_secret and refresh_token"
            )
        client = UserGrant(client_id, client_secret, refresh_token, token_url)
    return Calendar(
        name=name,
        calendar_id=str(options.get("calendar_id") or "primary"),
        api_url=str(options.get("api_url") or DEFAULT_API_URL).rstrip("/"),
        client=client,
        timezone=str(options["timezone"]) if options.get("timezone") else None,
        send_updates=str(options.get("send_updates") or "all"),
    )
