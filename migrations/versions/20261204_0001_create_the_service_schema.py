"""Create the service schema

Revision ID: 0001
Revises: 
Create Date: 2026-12-04 20:32:55.950599
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.Enum('creator', 'admin', name='role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('name', name=op.f('uq_accounts_name'))
    )
    op.create_table('models',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('family', sa.Enum('sd1', 'sd2', 'sdxl', name='modelfamily', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('weights_path', sa.String(length=1024), nullable=True),
    sa.Column('weights_s3_key', sa.String(length=1024), nullable=True),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(weights_path IS NULL) <> (weights_s3_key IS NULL)', name=op.f('ck_models_one_weights_location')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models')),
    sa.UniqueConstraint('name', name=op.f('uq_models_name'))
    )
    op.create_table('ablation_jobs',
    sa.Column('model_id', sa.Uuid(), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', 'cancelled', name='jobstatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('stage', sa.Enum('anchor_data', 'training', 'evaluation', 'upload', 'publication', name='jobstage', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('progress_percent', sa.Double(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failure_reason', sa.String(length=2000), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['accounts.id'], name=op.f('fk_ablation_jobs_created_by_id_accounts')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_ablation_jobs_model_id_models')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ablation_jobs'))
    )
    op.create_index(op.f('ix_ablation_jobs_model_id'), 'ablation_jobs', ['model_id'], unique=False)
    op.create_index(op.f('ix_ablation_jobs_status'), 'ablation_jobs', ['status'], unique=False)
    op.create_table('api_tokens',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_api_tokens_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_api_tokens_account_id'), 'api_tokens', ['account_id'], unique=False)
    op.create_table('model_versions',
    sa.Column('model_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('delta_key', sa.String(length=1024), nullable=False),
    sa.Column('delta_sha256', sa.String(length=64), nullable=False),
    sa.Column('delta_size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('cumulative_delta_key', sa.String(length=1024), nullable=False),
    sa.Column('cumulative_delta_sha256', sa.String(length=64), nullable=False),
    sa.Column('cumulative_delta_size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('evaluation', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['ablation_jobs.id'], name=op.f('fk_model_versions_job_id_ablation_jobs')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_model_versions_model_id_models')),
    sa.ForeignKeyConstraint(['parent_id'], ['model_versions.id'], name=op.f('fk_model_versions_parent_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('job_id', name=op.f('uq_model_versions_job_id')),
    sa.UniqueConstraint('model_id', 'number', name='uq_model_versions_number')
    )
    op.create_index(op.f('ix_model_versions_model_id'), 'model_versions', ['model_id'], unique=False)
    op.create_table('opt_out_requests',
    sa.Column('creator_id', sa.Uuid(), nullable=False),
    sa.Column('model_id', sa.Uuid(), nullable=False),
    sa.Column('concept_kind', sa.Enum('instance', 'style', 'memorization', name='conceptkind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('target_concept', sa.String(length=500), nullable=False),
    sa.Column('target_normalized', sa.String(length=500), nullable=False),
    sa.Column('anchor_concept', sa.String(length=500), nullable=False),
    sa.Column('anchor_prompts', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('target_prompts', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('memorized_image_key', sa.String(length=1024), nullable=True),
    sa.Column('memorized_image_sha256', sa.String(length=64), nullable=True),
    sa.Column('contact', sa.String(length=320), nullable=False),
    sa.Column('justification', sa.String(length=5000), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', 'queued', 'running', 'succeeded', 'failed', 'cancelled', name='requeststatus', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('rejection_reason', sa.String(length=2000), nullable=True),
    sa.Column('failure_reason', sa.String(length=2000), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('decided_by_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creator_id'], ['accounts.id'], name=op.f('fk_opt_out_requests_creator_id_accounts')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['accounts.id'], name=op.f('fk_opt_out_requests_decided_by_id_accounts')),
    sa.ForeignKeyConstraint(['job_id'], ['ablation_jobs.id'], name=op.f('fk_opt_out_requests_job_id_ablation_jobs')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_opt_out_requests_model_id_models')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opt_out_requests')),
    sa.UniqueConstraint('creator_id', 'idempotency_key', name='uq_opt_out_requests_idempotency')
    )
    op.create_index(op.f('ix_opt_out_requests_creator_id'), 'opt_out_requests', ['creator_id'], unique=False)
    op.create_index(op.f('ix_opt_out_requests_job_id'), 'opt_out_requests', ['job_id'], unique=False)
    op.create_index(op.f('ix_opt_out_requests_model_id'), 'opt_out_requests', ['model_id'], unique=False)
    op.create_index(op.f('ix_opt_out_requests_status'), 'opt_out_requests', ['status'], unique=False)
    op.create_index('uq_opt_out_requests_open_target', 'opt_out_requests', ['creator_id', 'model_id', 'target_normalized'], unique=True, postgresql_where=sa.text("status IN ('pending', 'approved', 'queued', 'running')"))


def downgrade() -> None:
    op.drop_index('uq_opt_out_requests_open_target', table_name='opt_out_requests', postgresql_where=sa.text("status IN ('pending', 'approved', 'queued', 'running')"))
    op.drop_index(op.f('ix_opt_out_requests_status'), table_name='opt_out_requests')
    op.drop_index(op.f('ix_opt_out_requests_model_id'), table_name='opt_out_requests')
    op.drop_index(op.f('ix_opt_out_requests_job_id'), table_name='opt_out_requests')
    op.drop_index(op.f('ix_opt_out_requests_creator_id'), table_name='opt_out_requests')
    op.drop_table('opt_out_requests')
    op.drop_index(op.f('ix_model_versions_model_id'), table_name='model_versions')
    op.drop_table('model_versions')
    op.drop_index(op.f('ix_api_tokens_account_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_index(op.f('ix_ablation_jobs_status'), table_name='ablation_jobs')
    op.drop_index(op.f('ix_ablation_jobs_model_id'), table_name='ablation_jobs')
    op.drop_table('ablation_jobs')
    op.drop_table('models')
    op.drop_table('accounts')
