"""service benefits

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('benefit_cents', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('benefit_up_to', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('benefit_period', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('benefit_basis', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_column('benefit_basis')
        batch_op.drop_column('benefit_period')
        batch_op.drop_column('benefit_up_to')
        batch_op.drop_column('benefit_cents')
