import uuid
from datetime import datetime

from pydantic import BaseModel

from api.auth.tables import Role
from api.schemas import CleanText, OrmModel


class AccountCreate(BaseModel):
    name: CleanText(200)  # type: ignore[valid-type]
    role: Role = Role.CREATOR


class AccountPublic(OrmModel):
    id: uuid.UUID
    name: str
    role: Role
    created_at: datetime


class TokenCreate(BaseModel):
    label: CleanText(200) = "api"  # type: ignore[valid-type]


class TokenPublic(OrmModel):
    id: uuid.UUID
    label: str
    created_at: datetime
    revoked_at: datetime | None


class TokenIssued(BaseModel):
    """A new token; `token` is shown only in this response."""

    account: AccountPublic
    token_id: uuid.UUID
    token: str


class WhoAmI(BaseModel):
    account: AccountPublic
    token: TokenPublic
