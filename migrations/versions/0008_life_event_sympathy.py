"""life event sympathy

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('life_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sympathy', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('life_events', schema=None) as batch_op:
        batch_op.drop_column('sympathy')
