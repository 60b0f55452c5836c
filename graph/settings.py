"""Configuration: one pydantic-settings class, built by the CLI (or a test) and passed to the app.

Every field can be set with an ``EXECGRAPH_`` environment variable (``EXECGRAPH_STORE``,
``EXECGRAPH_INDEX``, ...) or by the matching CLI option. Nothing creates a Settings object at
import time: :func:`graph.server.app.create_app` takes one.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from storage.files import create_atomic
from storage.reader import DEFAULT_MAX_FILE_BYTES


def cache_root() -> Path:
    """Where execgraph keeps indexes, the demo store and exports unless told otherwise."""
    return Path(platformdirs.user_cache_dir("execgraph", appauthor=False))


class Limits(BaseModel):
    """What the GraphQL schema enforces on every request (:mod:`graph.api.extensions.limits`,
    :mod:`graph.api.paging`): declared here once, as settings of :class:`Settings`, which
    extends this model (so each is an ``EXECGRAPH_`` variable too). ``Limits()`` holds the
    defaults: the published schema is built with them.
    """

    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    max_query_depth: int = Field(
        default=8,
        ge=1,
        description="Deepest field nesting of an operation (root fields are at depth 0; "
        "introspection fields are bounded separately).",
    )
    max_aliases: int = Field(default=30, ge=0, description="Most aliases in one document.")
    max_tokens: int = Field(
        default=1000,
        ge=100,
        description="Most lexical tokens in one document (parsing stops beyond it); this also "
        "bounds validation work. GraphiQL's introspection query has ~200, UI queries ~50.",
    )
    max_query_cost: int = Field(
        default=25_000,
        ge=1,
        description="Most objects a query may return, counted before execution: page sizes "
        "(first/last, else the default page size) multiplied along nested lists, "
        "items_per_execution for each Execution.items.",
    )
    items_per_execution: int = Field(
        default=20,
        ge=1,
        description="What Execution.items counts for in the query cost (runs hold ~5-20 items).",
    )
    max_items_per_request: int = Field(
        default=10_000,
        ge=1,
        description="Most items one request builds, counted from the runs' real item counts "
        "(the index knows them) before their files are read: each Execution.items charges its "
        "run's count (with a filter, the matching items), each page of the items connection "
        "its rows. Over it, the whole request is refused with QUERY_TOO_COMPLEX. ~10,000 items "
        "with every field take ~0.7 s of the event loop.",
    )
    max_item_bytes_per_request: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Most record-file bytes whose items one request builds (the index knows "
        "each file's size): each Execution.items charges its run's file size, each page of the "
        "items connection the files of its runs. Over it, the whole request is refused with "
        "QUERY_TOO_COMPLEX (the answer would not fit in memory).",
    )
    request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Queries running longer are stopped with TIMEOUT (index work included).",
    )
    production: bool = Field(
        default=False,
        description="Production mode: no field suggestions ('Did you mean ...') in errors, and "
        "introspection only for requests with a valid token.",
    )

    @model_validator(mode="after")
    def _page_sizes(self) -> Self:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self

    def limits(self) -> Limits:
        """These limits alone (a copy that later changes to settings do not reach)."""
        return Limits.model_validate(self.model_dump(include=set(Limits.model_fields)))


class Settings(BaseSettings, Limits):
    """Settings of one execgraph server (with the :class:`Limits` of its schema)."""

    model_config = SettingsConfigDict(env_prefix="EXECGRAPH_", extra="ignore")

    store: Path = Field(description="Directory of <execution_id>.json record files (read only).")
    index: Path | None = Field(
        default=None,
        description="SQLite index file; default: a file per store in the user cache folder.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_file_bytes: int = Field(default=DEFAULT_MAX_FILE_BYTES, ge=1024)
    watch: bool = Field(default=True, description="Watch the store for new and changed files.")
    watch_mode: Literal["auto", "poll"] = Field(
        default="auto",
        description="'auto' uses file-system notifications (inotify); 'poll' for network mounts.",
    )
    poll_interval_ms: int = Field(default=300, ge=50)
    rescan_interval_s: float = Field(
        default=300.0, ge=1.0, description="Full rescan as a safety net for missed notifications."
    )
    startup_sync: bool = Field(
        default=True,
        description="Sync the index before serving; `execgraph serve` syncs first (with a "
        "progress bar) and lets its workers skip this.",
    )
    export_dir: Path | None = Field(
        default=None,
        description="Where export files are written (outside the store); default: the user cache.",
    )
    export_ttl_hours: float = Field(default=24.0, gt=0, description="Exports expire after this.")
    max_export_records: int = Field(default=100_000, ge=1)
    media_dir: Path | None = Field(
        default=None,
        description="Images are embedded in PDF/DOCX reports only from files under this folder.",
    )
    audit_log: Path | None = Field(
        default=None, description="One JSON line per export; default: the user log folder."
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Key of the keyed hash that pseudonymises ids in exports (at least 16 "
        "characters). Default: a random key created once in the user data folder.",
    )
    graphiql: bool = True
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (https://host:port) allowed to open WebSockets and make "
        "cross-origin requests; same-origin pages and non-browser clients always may.",
    )
    max_subscriptions_per_connection: int = Field(default=20, ge=1)
    connection_init_timeout_s: float = Field(
        default=10.0, gt=0, description="WebSockets without connection_init are closed after this."
    )
    log_level: str = "info"

    # -- access control (see graph.access.tokens) --------------------------------------------------
    tokens_file: Path | None = Field(
        default=None,
        description="File of token hashes ('role:sha256hex [label]' per line), written by "
        "`execgraph token create`; re-read when it changes. Setting it makes tokens required.",
    )
    token_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More token hashes, 'role:sha256hex' separated by commas (for containers). "
        "Setting any makes tokens required.",
    )
    insecure_no_auth: bool = Field(
        default=False,
        description="Serve without tokens on a non-loopback address (trusted networks only).",
    )

    # -- request limits (see graph.server.middleware; the schema's are in Limits) ----------------
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest request body (bytes); larger ones get 413 before any parsing.",
    )

    # -- connections (see graph.server.connections) ------------------------------------------------
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A request's line and headers must arrive within this after their first "
        "byte (slow senders get 408 and are closed).",
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="A request's whole body must arrive within this."
    )
    idle_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A connection with no request in progress (before its first byte or "
        "between requests) is closed after this.",
    )
    max_connections: int | None = Field(
        default=None,
        ge=1,
        description="Most open connections (HTTP and WebSocket) per server process; more get "
        "503 SERVICE_UNAVAILABLE. Default: three quarters of the file descriptors left after a "
        "reserve of max(64, ulimit -n / 8) for the index, the watcher and exports.",
    )

    @field_validator("token_hashes", mode="before")
    @classmethod
    def _split_hashes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def tokens_configured(self) -> bool:
        """Whether clients must present a token (any tokens file or hash is configured)."""
        return self.tokens_file is not None or bool(self.token_hashes)

    @property
    def export_path(self) -> Path:
        """The folder export files are written to."""
        return self.export_dir if self.export_dir is not None else cache_root() / "exports"

    @property
    def audit_path(self) -> Path:
        """The export audit log."""
        if self.audit_log is not None:
            return self.audit_log
        return Path(platformdirs.user_log_dir("execgraph", appauthor=False)) / "exports.jsonl"

    def pseudonym_key_bytes(self) -> bytes:
        """The pseudonymisation key: configured, or created once and kept (mode 0600)."""
        if self.pseudonym_key is not None:
            return self.pseudonym_key.get_secret_value().encode("utf-8")
        path = Path(platformdirs.user_data_dir("execgraph", appauthor=False)) / "pseudonym.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            create_atomic(path, secrets.token_hex(32).encode("ascii"))  # or another process did
        return path.read_text(encoding="ascii").strip().encode("ascii")

    @property
    def index_path(self) -> Path:
        """The index file to use for this store."""
        if self.index is not None:
            return self.index
        digest = hashlib.sha256(str(self.store.resolve()).encode()).hexdigest()[:16]
        return cache_root() / "indexes" / f"{digest}.sqlite3"
