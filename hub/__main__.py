"""`python -m hub` is the same as the `switchboard` command."""

from __future__ import annotations

from hub.cli import main

raise SystemExit(main())
