"""handoff life cycle and the staff console

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 23:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('handoff_requests') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('claimed_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('closed_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('outcome', sa.String(length=60), nullable=True))
        batch.add_column(sa.Column('notified_position', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('callback_requested', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('handoff_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('author', sa.String(length=80), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('delivered', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoff_requests.id'], name=op.f('fk_handoff_messages_handoff_id_handoff_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_messages'))
    )
    op.create_index(op.f('ix_handoff_messages_handoff_id'), 'handoff_messages', ['handoff_id'], unique=False)
    op.create_table('staff_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.String(length=300), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_users_username'))
    )
    op.create_table('staff_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_sessions_user_id_staff_users')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_staff_sessions'))
    )
    op.create_index(op.f('ix_staff_sessions_user_id'), 'staff_sessions', ['user_id'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_table('conversation_reviews',
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('reviewed', sa.Boolean(), nullable=False),
    sa.Column('reviewed_by', sa.String(length=80), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sender_id', name=op.f('pk_conversation_reviews'))
    )
    op.create_table('nlu_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sender_id', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('predicted_intent', sa.String(length=80), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('correct_intent', sa.String(length=80), nullable=False),
    sa.Column('corrected_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nlu_corrections')),
    sa.UniqueConstraint('event_id', name=op.f('uq_nlu_corrections_event_id'))
    )
    op.create_index(op.f('ix_nlu_corrections_sender_id'), 'nlu_corrections', ['sender_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_nlu_corrections_sender_id'), table_name='nlu_corrections')
    op.drop_table('nlu_corrections')
    op.drop_table('conversation_reviews')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_staff_sessions_user_id'), table_name='staff_sessions')
    op.drop_table('staff_sessions')
    op.drop_table('staff_users')
    op.drop_index(op.f('ix_handoff_messages_handoff_id'), table_name='handoff_messages')
    op.drop_table('handoff_messages')
    with op.batch_alter_table('handoff_requests') as batch:
        for column in ('callback_requested', 'notified_position', 'outcome', 'closed_at', 'claimed_at', 'claimed_by'):
            batch.drop_column(column)
