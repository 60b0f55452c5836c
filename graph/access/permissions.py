"""Role checks on GraphQL fields, as Strawberry permission extensions.

Each root field (and ``StorageStats.invalidRecords``) declares the role it needs with
``extensions=requires(Role.X)``. The check runs before the resolver, so a refused field does no
work: no index query, no file read, no export started. For a subscription it runs before the
event stream is created, so the subscription is refused at once.

Who is asking comes from the connection the context was built for: Starlette's
``scope["user"]``, set by :class:`graph.server.middleware.BearerBackend` from the ``Authorization``
header, or after ``connection_init`` on a WebSocket (see :mod:`graph.server.endpoint`).
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from graph.access.tokens import Principal, Role
from graph.errors import Forbidden, Unauthenticated


def principal_of(connection: Any) -> Principal | None:
    """The principal Starlette's authentication attached to ``connection`` (request or socket)."""
    scope = getattr(connection, "scope", None)
    user = scope.get("user") if isinstance(scope, dict) else None
    return user if isinstance(user, Principal) else None


def principal_of_context(context: Any) -> Principal | None:
    """The principal of a request's GraphQL context."""
    return principal_of(getattr(context, "request", None))


class Identified(BasePermission):
    """The request carries a valid token (or the server runs in open mode)."""

    message = "a valid token is required: send 'Authorization: Bearer <token>'"
    error_class = Unauthenticated

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return principal_of_context(info.context) is not None


class HasRole(BasePermission):
    """The request's role is ``role`` or a higher one."""

    error_class = Forbidden

    def __init__(self, role: Role) -> None:
        self.role = role
        self.message = f"this needs the {role.label} role (or a higher one)"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        principal = principal_of_context(info.context)
        return principal is not None and principal.may(self.role)


def requires(role: Role) -> list[FieldExtension]:
    """Field extensions refusing the field to requests without ``role``."""
    return [PermissionExtension(permissions=[Identified(), HasRole(role)], use_directives=False)]
