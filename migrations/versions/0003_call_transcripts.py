"""call transcripts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 20:09:52.859445
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('call_transcripts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=30), nullable=False),
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('caller_audio_seconds', sa.Float(), nullable=False),
    sa.Column('turns', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_transcripts')),
    sa.UniqueConstraint('call_id', name=op.f('uq_call_transcripts_call_id'))
    )
    with op.batch_alter_table('call_transcripts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_transcripts_sender_id'), ['sender_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('call_transcripts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_transcripts_sender_id'))

    op.drop_table('call_transcripts')
