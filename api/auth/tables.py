import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import Base, IdMixin
from api.enums import enum_column


class Role(StrEnum):
    CREATOR = "creator"
    ADMIN = "admin"


class Account(IdMixin, Base):
    __tablename__ = "accounts"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[Role] = mapped_column(enum_column(Role))

    tokens: Mapped[list["ApiToken"]] = relationship(back_populates="account")


class ApiToken(IdMixin, Base):
    __tablename__ = "api_tokens"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    # HMAC-SHA256 of the token under the settings' token hash secret, hex.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship(back_populates="tokens", lazy="joined")
