"""failed look-ups of citizens' records (ownership proofs and their limits)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('record_lookups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=30), nullable=False),
    sa.Column('conversation_key', sa.String(length=64), nullable=False),
    sa.Column('source_key', sa.String(length=64), nullable=False),
    sa.Column('record_key', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_lookups'))
    )
    op.create_index(op.f('ix_record_lookups_at'), 'record_lookups', ['at'], unique=False)
    op.create_index(op.f('ix_record_lookups_conversation_key'), 'record_lookups', ['conversation_key'], unique=False)
    op.create_index(op.f('ix_record_lookups_source_key'), 'record_lookups', ['source_key'], unique=False)
    op.create_index(op.f('ix_record_lookups_record_key'), 'record_lookups', ['record_key'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_record_lookups_record_key'), table_name='record_lookups')
    op.drop_index(op.f('ix_record_lookups_source_key'), table_name='record_lookups')
    op.drop_index(op.f('ix_record_lookups_conversation_key'), table_name='record_lookups')
    op.drop_index(op.f('ix_record_lookups_at'), table_name='record_lookups')
    op.drop_table('record_lookups')
