"""Secrets that never print: resolved from env vars or files, masked in repr/str."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import ConfigError

MASK = "**********"


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value; `reveal()` is the only way to read it, so it is easy to audit."""

    _value: str = field(repr=False)
    origin: str = ""

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK}, origin={self.origin!r})"


class MissingSecret(ConfigError):
    """A referenced secret is not set on this machine (env var unset, file absent).

    Its own type so tools that only read names and types (`rules check`, `simulate`) can
    note it and go on, while everything that runs the hub still refuses to start.
    """

    def __init__(self, message: str, *, reference: str, hint: str = "") -> None:
        #: Where the value would come from: an env var's name, or `file <path>`.
        self.reference = reference
        super().__init__(message, hint=hint)


def is_secret_ref(value: object) -> bool:
    """True for `{env: NAME}` / `{file: PATH}` mappings (optionally with `optional: true`)."""
    if not isinstance(value, Mapping):
        return False
    keys = set(value)
    return bool(keys & {"env", "file"}) and keys <= {"env", "file", "optional"}


def resolve_secret_ref(
    ref: Mapping[str, object], *, environ: Mapping[str, str], base_dir: Path, where: str
) -> Secret | None:
    """Resolve one reference; None when it is optional and absent."""
    if "env" in ref and "file" in ref:
        raise ConfigError(f"{where}: set either 'env' or 'file', not both")
    optional = bool(ref.get("optional", False))
    if "env" in ref:
        name = str(ref["env"])
        return read_secret_env(name, environ=environ, base_dir=base_dir, optional=optional)
    path = base_dir / str(ref["file"])
    return _read_file(path, where=where, optional=optional, shown=str(ref["file"]))


def read_secret_env(
    name: str, *, environ: Mapping[str, str], base_dir: Path, optional: bool
) -> Secret | None:
    """Read NAME or NAME_FILE from the environment; both set is an error."""
    value = environ.get(name)
    file_name = environ.get(f"{name}_FILE")
    if value is not None and file_name is not None:
        raise ConfigError(f"both {name} and {name}_FILE are set; unset one of them")
    if value is not None:
        if not value:
            raise ConfigError(f"environment variable {name} is empty")
        return Secret(value, origin=f"env:{name}")
    if file_name is not None:
        return _read_file(
            base_dir / file_name, where=f"{name}_FILE", optional=False, shown=file_name
        )
    if optional:
        return None
    raise MissingSecret(
        f"environment variable {name} is not set",
        reference=name,
        hint=f"export {name}=... or {name}_FILE=/path/to/file",
    )


def _read_file(path: Path, *, where: str, optional: bool, shown: str) -> Secret | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if optional:
            return None
        raise MissingSecret(
            f"{where}: secret file {path} does not exist", reference=f"file {shown}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}") from exc
    if not text:
        raise ConfigError(f"{where}: secret file {path} is empty")
    return Secret(text, origin=f"file:{path}")
