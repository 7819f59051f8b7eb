"""`people:` and `roles:` of switchboard.yaml: who is who across Notion, Discord, Slack,
email and GitHub.

Rules address people (`to: {person: ...}`, `to: {role: ...}`), never raw chat ids: the
directory turns a Notion assignee (a name or an email, as hub/notion/properties.py
flattens people), a chat user id or a config key into one `Person` with every id. The
template filters that look people up (`mention`, `person`, ...) are in hub/team/people.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ADDRESS_ATTRIBUTES",
    "DEFAULT_ROLES",
    "Directory",
    "PeopleView",
    "Person",
    "directory_from_config",
]

DEFAULT_ROLES = ("project-manager", "team-member", "client")
#: Person attributes a connector can address a message to (`person_address`).
ADDRESS_ATTRIBUTES = ("discord", "slack", "email", "notion", "github")
#: `<@123>` / `<@!123>` (Discord) and `<@U123>` / `<@U123|ada>` (Slack) mentions.
_MENTION = re.compile(r"^<@!?([A-Za-z0-9]+)(?:\|[^>]*)?>$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Person:
    key: str
    name: str
    roles: tuple[str, ...] = ()
    notion: str | None = None
    discord: str | None = None
    slack: str | None = None
    email: str | None = None
    github: str | None = None
    timezone: str = "UTC"

    def as_dict(self) -> dict[str, Any]:
        """What templates see as `person`."""
        return {
            "key": self.key,
            "name": self.name,
            "roles": list(self.roles),
            "notion": self.notion,
            "discord": self.discord,
            "slack": self.slack,
            "email": self.email,
            "github": self.github,
            "timezone": self.timezone,
        }

    def mention(self, platform: str) -> str:
        """A chat mention on `platform`, or the name where the person has no id there."""
        if platform == "discord" and self.discord:
            return f"<@{self.discord}>"
        if platform == "slack" and self.slack:
            return f"<@{self.slack}>"
        if platform == "github" and self.github:
            return f"@{self.github}"
        return self.name


@dataclass(frozen=True, slots=True)
class Directory:
    people: tuple[Person, ...] = ()
    roles: tuple[str, ...] = DEFAULT_ROLES
    _index: dict[str, Person] = field(default_factory=dict, repr=False, compare=False)
    _view: list[PeopleView] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        for person in reversed(self.people):  # the first listed wins a shared name
            for value in (
                person.key,
                person.name,
                person.notion,
                person.discord,
                person.slack,
                person.email,
                person.github,
            ):
                if value:
                    self._index[value.strip().lower()] = person

    def find(self, ref: Any) -> Person | None:
        """The person a reference names: a config key, name, email, any id, a chat mention,
        a Notion user object (`{id, name, person: {email}}`) or a `person` dict."""
        if isinstance(ref, Person):
            return ref
        if isinstance(ref, Mapping):
            for key in ("key", "id", "email", "name"):
                if isinstance(ref.get(key), str) and (found := self.find(ref[key])):
                    return found
            inner = ref.get("person")
            return self.find(inner.get("email")) if isinstance(inner, Mapping) else None
        if not isinstance(ref, str | int) or isinstance(ref, bool):
            return None
        text = str(ref).strip()
        if match := _MENTION.match(text):
            text = match.group(1)
        found = self._index.get(text.lower())
        if found is None and text.startswith("@"):  # `@ada`: a key, a login or a name
            found = self._index.get(text[1:].lower())
        return found

    def in_role(self, role: str) -> list[Person]:
        return [p for p in self.people if role in p.roles]

    def templates_view(self) -> PeopleView:
        """`people` in templates (built once; the sandbox lets no template change it)."""
        if not self._view:
            self._view.append(PeopleView(self))
        return self._view[0]


def directory_from_config(raw_people: Any, raw_roles: Any = None) -> tuple[Directory, list[str]]:
    """The directory and its problems (`people.<key>: ...`), from config values the
    schema has already checked for shape."""
    roles = tuple(raw_roles) if raw_roles else DEFAULT_ROLES
    problems: list[str] = []
    people: list[Person] = []
    seen: dict[str, str] = {}
    for key, raw in (raw_people or {}).items():
        raw = raw or {}
        person_roles = raw.get("roles", [])
        if isinstance(person_roles, str):
            person_roles = [person_roles]
        for role in person_roles:
            if role not in roles:
                problems.append(
                    f"people.{key}.roles: unknown role '{role}' (roles: {', '.join(roles)})"
                )
        person = Person(
            key=str(key),
            name=str(raw.get("name") or key),
            roles=tuple(person_roles),
            notion=_text(raw.get("notion")),
            discord=_text(raw.get("discord")),
            slack=_text(raw.get("slack")),
            email=_text(raw.get("email")),
            github=_text(raw.get("github")),
            timezone=str(raw.get("timezone") or "UTC"),
        )
        try:
            ZoneInfo(person.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                f"people.{key}.timezone: unknown time zone {person.timezone!r} "
                "(an IANA name such as Europe/Berlin)"
            )
        for attr in ADDRESS_ATTRIBUTES:
            value = getattr(person, attr)
            if value is None:
                continue
            other = seen.setdefault(f"{attr}:{value.lower()}", person.key)
            if other != person.key:
                problems.append(f"people.{key}.{attr}: {value!r} is also {other}'s")
        people.append(person)
    return Directory(tuple(people), roles), problems


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class PeopleView(dict[str, dict[str, Any]]):
    """`people` in templates: person data by config key, carrying the directory the
    `mention` and `person` filters look names and ids up in."""

    __slots__ = ("directory",)

    def __init__(self, directory: Directory) -> None:
        super().__init__({p.key: p.as_dict() for p in directory.people})
        self.directory = directory
