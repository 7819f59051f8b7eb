"""Alembic revisions of the store's schema; `hub.store.migrate` runs them.

Alembic is configured in code (no alembic.ini at run time) with this directory as the
script location, found from `__file__` so that an installed wheel migrates too.
"""

from __future__ import annotations
