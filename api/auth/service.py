"""API tokens: random bearer strings, stored only as HMAC-SHA256 hashes."""

import hashlib
import hmac
import secrets
import uuid

from sqlalchemy.orm import Session

from api.auth import queries
from api.auth.tables import Account, ApiToken, Role
from api.db import utcnow
from api.errors import Conflict, NotFound, Unauthorized

TOKEN_PREFIX = "abl_"


def hash_token(token: str, secret: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def authenticate(session: Session, token: str, secret: str) -> ApiToken:
    """Return the live token row for a bearer token, or raise Unauthorized."""
    row = queries.token_by_hash(session, hash_token(token, secret))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("invalid or revoked API token; send 'Authorization: Bearer <token>'")
    return row


def create_account(session: Session, name: str, role: Role) -> Account:
    if queries.account_by_name(session, name) is not None:
        raise Conflict(f"an account named {name!r} already exists; choose another name")
    account = Account(name=name, role=role)
    session.add(account)
    session.flush()
    return account


def issue_token(session: Session, account: Account, secret: str, label: str = "") -> tuple[ApiToken, str]:
    """Create a token for the account; the plain value is returned once and never stored."""
    value = new_token_value()
    token = ApiToken(account=account, token_hash=hash_token(value, secret), label=label)
    session.add(token)
    session.flush()
    return token, value


def revoke_token(session: Session, caller: ApiToken, token_id: uuid.UUID) -> ApiToken:
    token = session.get(ApiToken, token_id)
    visible = token is not None and (
        caller.account.role == Role.ADMIN or token.account_id == caller.account_id
    )
    if token is None or not visible:
        raise NotFound(f"API token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def ensure_admin_account(session: Session, name: str) -> Account:
    account = queries.account_by_name(session, name)
    if account is None:
        return create_account(session, name, Role.ADMIN)
    if account.role != Role.ADMIN:
        raise Conflict(f"account {name!r} exists with role {account.role.value}, not admin")
    return account
