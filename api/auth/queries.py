import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth.tables import Account, ApiToken


def token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


def account_by_name(session: Session, name: str) -> Account | None:
    return session.scalar(select(Account).where(Account.name == name))


def list_accounts(session: Session, limit: int, offset: int) -> tuple[list[Account], int]:
    total = session.scalar(select(func.count()).select_from(Account)) or 0
    rows = session.scalars(
        select(Account).order_by(Account.created_at, Account.id).limit(limit).offset(offset)
    )
    return list(rows), total


def tokens_of_account(session: Session, account_id: uuid.UUID) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.account_id == account_id).order_by(ApiToken.created_at)
        )
    )
