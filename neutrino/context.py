"""Who is asking: the request context built from a validated token."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AuthInfo:
    """What a valid token says (identity side)."""

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[str, ...]  # role names, implied roles expanded
    expires_at: float  # epoch seconds
    audit_id: str
    issued_at: float = 0.0
    domain_id: str = "default"


@dataclass(frozen=True)
class RequestContext:
    """The caller of one API request.  ``is_admin`` follows the ``admin`` role."""

    user_id: str
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    request_id: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_service(self) -> bool:
        return "service" in self.roles

    def has(self, role: str) -> bool:
        return role in self.roles

    @classmethod
    def admin(cls, project_id: str = "", request_id: str = "") -> RequestContext:
        """An internal admin context (agents, bootstrap, tests)."""
        return cls("neutrino", project_id, frozenset({"admin", "manager", "member", "reader", "service"}), request_id)

    @classmethod
    def from_auth(cls, auth: AuthInfo, request_id: str = "") -> RequestContext:
        return cls(auth.user_id, auth.project_id, frozenset(auth.roles), request_id)


#: Keystone's default implied roles: admin ⇒ manager ⇒ member ⇒ reader.
IMPLIED_ROLES = {"admin": ("manager", "member", "reader"), "manager": ("member", "reader"), "member": ("reader",)}


def expand_roles(names: list[str] | tuple[str, ...] | set[str]) -> tuple[str, ...]:
    """Add implied roles, keeping a stable order."""
    out: list[str] = []
    for n in names:
        for r in (n, *IMPLIED_ROLES.get(n, ())):
            if r not in out:
                out.append(r)
    return tuple(out)
