"""staff console security: idle timeout, login throttling

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_sessions') as batch:
        batch.add_column(sa.Column('last_seen_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('staff_users') as batch:
        batch.add_column(sa.Column('password_changed_at', sa.DateTime(), nullable=True))
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('account_key', sa.String(length=64), nullable=False),
    sa.Column('source_key', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index(op.f('ix_login_failures_at'), 'login_failures', ['at'], unique=False)
    op.create_index(op.f('ix_login_failures_account_key'), 'login_failures', ['account_key'], unique=False)
    op.create_index(op.f('ix_login_failures_source_key'), 'login_failures', ['source_key'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_login_failures_source_key'), table_name='login_failures')
    op.drop_index(op.f('ix_login_failures_account_key'), table_name='login_failures')
    op.drop_index(op.f('ix_login_failures_at'), table_name='login_failures')
    op.drop_table('login_failures')
    with op.batch_alter_table('staff_users') as batch:
        batch.drop_column('password_changed_at')
    with op.batch_alter_table('staff_sessions') as batch:
        batch.drop_column('last_seen_at')
