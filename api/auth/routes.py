import uuid

from fastapi import APIRouter, status

from api.auth import queries, service
from api.auth.schemas import AccountCreate, AccountPublic, TokenCreate, TokenIssued, TokenPublic, WhoAmI
from api.deps import AdminToken, CurrentToken, PageDep, SessionDep, SettingsDep
from api.schemas import Page

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/me", response_model=WhoAmI)
def read_me(token: CurrentToken) -> WhoAmI:
    """Return the account and token behind the bearer token sent."""
    return WhoAmI(
        account=AccountPublic.model_validate(token.account),
        token=TokenPublic.model_validate(token),
    )


@router.post("/accounts", response_model=TokenIssued, status_code=status.HTTP_201_CREATED)
def create_account(
    body: AccountCreate, session: SessionDep, settings: SettingsDep, admin: AdminToken
) -> TokenIssued:
    """Create a creator or admin account with its first API token (admin only).

    The token is returned in this response only; the service stores its hash.
    """
    account = service.create_account(session, body.name, body.role)
    token, value = service.issue_token(session, account, settings.token_hash_secret, "initial")
    return TokenIssued(account=AccountPublic.model_validate(account), token_id=token.id, token=value)


@router.get("/accounts", response_model=Page[AccountPublic])
def list_accounts(session: SessionDep, admin: AdminToken, page: PageDep) -> Page[AccountPublic]:
    """List accounts, oldest first (admin only)."""
    rows, total = queries.list_accounts(session, page.limit, page.offset)
    return Page(
        items=[AccountPublic.model_validate(row) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/tokens", response_model=list[TokenPublic])
def list_my_tokens(session: SessionDep, token: CurrentToken) -> list[TokenPublic]:
    """List the caller's own tokens, revoked ones included; token values are never shown."""
    return [TokenPublic.model_validate(row) for row in queries.tokens_of_account(session, token.account_id)]


@router.post("/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, session: SessionDep, settings: SettingsDep, token: CurrentToken
) -> TokenIssued:
    """Issue another token for the caller's account, for rotation; shown only in this response."""
    new_token, value = service.issue_token(session, token.account, settings.token_hash_secret, body.label)
    return TokenIssued(
        account=AccountPublic.model_validate(token.account), token_id=new_token.id, token=value
    )


@router.delete("/tokens/{token_id}", response_model=TokenPublic)
def revoke_token(token_id: uuid.UUID, session: SessionDep, token: CurrentToken) -> TokenPublic:
    """Revoke one of the caller's tokens; admins may revoke any token."""
    return TokenPublic.model_validate(service.revoke_token(session, token, token_id))
