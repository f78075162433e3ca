"""Add the config folder location of single-file checkpoints to models

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 21:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('models', sa.Column('config_path', sa.String(length=1024), nullable=True))
    op.add_column('models', sa.Column('config_s3_key', sa.String(length=1024), nullable=True))
    op.create_check_constraint(
        op.f('ck_models_at_most_one_config_location'),
        'models',
        'config_path IS NULL OR config_s3_key IS NULL',
    )


def downgrade() -> None:
    op.drop_constraint(op.f('ck_models_at_most_one_config_location'), 'models', type_='check')
    op.drop_column('models', 'config_s3_key')
    op.drop_column('models', 'config_path')
