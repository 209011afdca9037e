"""telegram webhook updates taken on by a bot process (no update lost or answered twice)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('telegram_updates',
    sa.Column('bot_id', sa.String(length=20), nullable=False),
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('holder', sa.String(length=40), nullable=False),
    sa.Column('lease_until', sa.DateTime(), nullable=False),
    sa.Column('handled_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('bot_id', 'update_id', name=op.f('pk_telegram_updates'))
    )
    op.create_index(op.f('ix_telegram_updates_handled_at'), 'telegram_updates', ['handled_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_telegram_updates_handled_at'), table_name='telegram_updates')
    op.drop_table('telegram_updates')
