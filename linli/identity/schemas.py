"""API shapes of identity."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from linli.identity.models import Role, User


class LoginCodeCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    phone: str = Field(max_length=32, examples=["13800138000"], description="mainland China mobile number")


class LoginCodeRead(BaseModel):
    phone: str = Field(description="the number, masked")
    expires_in_seconds: int
    resend_after_seconds: int


class SessionCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    phone: str = Field(max_length=32, examples=["13800138000"])
    code: str = Field(max_length=16, examples=["123456"])
    anonymous_id: str | None = Field(
        default=None,
        min_length=8,
        max_length=64,
        description="the client's own anonymous id, for clients without the linli_aid cookie",
    )


class UserRead(BaseModel):
    id: int
    phone: str
    nickname: str
    display_name: str
    roles: list[Role]
    community_id: int | None = None
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserRead:
        return cls(
            id=user.id,
            phone=user.phone,
            nickname=user.nickname,
            display_name=user.display_name,
            roles=sorted_roles(user.role_names),
            community_id=None,
            is_active=user.is_active,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
        )


class SessionRead(BaseModel):
    token: str
    user: UserRead


class UserUpdate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    nickname: str = Field(min_length=1, max_length=20)


class RolesUpdate(BaseModel):
    roles: list[Role] = Field(description="the complete set of roles; customer is always kept")


class UserPage(BaseModel):
    items: list[UserRead]
    total: int
    page: int
    per_page: int
    pages: int


ROLE_ORDER = [Role.customer, Role.host, Role.leader, Role.operator]


def sorted_roles(names: set[str]) -> list[Role]:
    return [role for role in ROLE_ORDER if role.value in names]
