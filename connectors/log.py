"""Log connector: appends each rendered message as a JSON line to a local file.

Used by the demo (no accounts needed) and handy as a local inbox while writing rules.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, ClassVar

from connectors.base import (
    Connector,
    ConnectorEnv,
    DeliveryContext,
    RenderedAction,
    SendResult,
    fail,
    ok,
)

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to", "message"],
    "properties": {
        "to": {
            "type": "string",
            "description": "Name of a log destination in switchboard.yaml.",
            "examples": ["demo-log"],
        },
        "message": {
            "type": "string",
            "description": "The line to write; a template over `event`.",
            "examples": ["{{ event.type }}: {{ event.data.entity.title }}"],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {
            "type": "string",
            "description": "File to append JSON lines to, relative to switchboard.yaml.",
            "examples": ["var/inbox.log"],
        },
        "echo": {
            "type": "boolean",
            "description": "Also print each message on standard output.",
            "examples": [True],
        },
    },
}


class LogConnector(Connector):
    """Writes `{"time", "delivery_id", "rule", "message"}` lines."""

    name: ClassVar[str] = "log"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "to"

    def __init__(self, env: ConnectorEnv) -> None:
        self._base_dir = env.base_dir
        self._lock = threading.Lock()

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        if ctx.destination is None:
            return fail("log action has no destination ('to')")
        path = self._base_dir / str(ctx.destination.options["path"])
        line = json.dumps(
            {
                "time": ctx.now.isoformat(),
                "delivery_id": ctx.delivery_id,
                "event_id": ctx.event_id,
                "rule": ctx.rule_id,
                "message": action.params["message"],
            },
            ensure_ascii=False,
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            return fail(f"cannot append to {path}: {exc.strerror}")
        except UnicodeEncodeError as exc:  # the same text fails the same way on every try
            return fail(f"cannot write the message to {path} as UTF-8: {exc.reason}")
        if ctx.destination.options.get("echo"):
            print(f"[{ctx.rule_id}] {action.params['message']}", file=sys.stdout, flush=True)
        return ok(f"{path.name}")
