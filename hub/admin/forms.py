"""Read dashboard POST forms (urlencoded) and check their CSRF token.

Parsed with the standard library, so the dashboard needs no multipart package.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.requests import Request

from hub.admin.session import Session, csrf_matches

MAX_FORM_BYTES = 1024 * 1024


class Form:
    """A parsed form: `get` for one value, `getlist` for repeated fields (checkboxes)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))


async def read_form(request: Request) -> Form:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"form is over {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, "form is not UTF-8") from exc
    return Form(parse_qs(text, keep_blank_values=True))


async def checked_form(request: Request) -> Form:
    """The form of a signed-in user's POST; 403 unless it carries the session's CSRF token."""
    form = await read_form(request)
    session: Session | None = request.auth
    if session is None or not csrf_matches(session, form.get("csrf")):
        raise HTTPException(403, "the form's CSRF token is missing or stale; reload the page")
    return form
