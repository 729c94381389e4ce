"""Users, their roles, login codes, sessions and anonymous devices."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, IdMixin


class Role(enum.StrEnum):
    customer = "customer"
    host = "host"
    operator = "operator"
    leader = "leader"


class User(IdMixin, Base):
    __tablename__ = "users"

    phone: Mapped[str] = mapped_column(String(20), unique=True)
    nickname: Mapped[str] = mapped_column(String(40), default="")
    avatar_path: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}

    def has_role(self, *roles: Role) -> bool:
        return bool(self.role_names & {r.value for r in roles})

    @property
    def display_name(self) -> str:
        return display_name(self.nickname, self.phone)


def display_name(nickname: str, phone: str) -> str:
    """How a neighbour is named: their nickname, or 邻居 and the last four digits of their phone."""
    return nickname or f"邻居{phone[-4:]}"


class UserRole(IdMixin, Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="roles")

    __table_args__ = (UniqueConstraint("user_id", "role"),)


class LoginCode(IdMixin, Base):
    __tablename__ = "login_codes"

    phone: Mapped[str] = mapped_column(String(20), index=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None]
    burned_at: Mapped[datetime | None]
    client_ip: Mapped[str | None] = mapped_column(String(64))


class AuthSession(IdMixin, Base):
    """A login: the same token serves the page cookie and the API bearer header."""

    __tablename__ = "auth_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    anonymous_id: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    client_ip: Mapped[str | None] = mapped_column(String(64))


class Device(IdMixin, Base):
    """An anonymous id (first-visit cookie) and, once they log in, whose it is — kept for stitching."""

    __tablename__ = "devices"

    anonymous_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str | None] = mapped_column(String(255))
