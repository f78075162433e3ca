"""Admin commands for the service database.

    python -m api.cli create-admin-token [--name admin]
    python -m api.cli create-token --name alice --role creator

Each prints a new API token once; only its hash is stored. Settings come from the
ABLATE_* variables (the local stack writes them to .stack/ablate.env).
"""

import argparse
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from api.auth import queries, service
from api.auth.tables import Role
from api.db import make_engine, make_sessionmaker
from api.errors import ApiError
from api.settings import get_settings


def create_token(account_name: str, role: Role, label: str) -> str:
    settings = get_settings()
    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine)() as session:
            if role == Role.ADMIN:
                account = service.ensure_admin_account(session, account_name)
            else:
                account = queries.account_by_name(session, account_name) or service.create_account(
                    session, account_name, role
                )
                if account.role != role:
                    raise ApiError(
                        f"account {account_name!r} exists with role {account.role.value}, not "
                        f"{role.value}; choose another name"
                    )
            _, value = service.issue_token(session, account, settings.token_hash_secret, label)
            session.commit()
    finally:
        engine.dispose()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.cli", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin-token", help="create the admin account if missing and print a new token")
    admin.add_argument("--name", default="admin", help="admin account name (default: admin)")
    creator = commands.add_parser("create-token", help="create an account if missing and print a new token")
    creator.add_argument("--name", required=True, help="account name")
    creator.add_argument("--role", choices=[role.value for role in Role], default=Role.CREATOR.value)
    args = parser.parse_args(argv)

    role = Role.ADMIN if args.command == "create-admin-token" else Role(args.role)
    try:
        token = create_token(args.name, role, label="cli")
    except ApiError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 1
    except OperationalError as error:
        url = make_url(get_settings().database_url).render_as_string(hide_password=True)
        print(
            f"error: cannot reach the database at {url} ({str(error.orig).strip().splitlines()[0]}); "
            "start it or set ABLATE_DATABASE_URL",
            file=sys.stderr,
        )
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
