"""Custom actions for the OneWindow assistant, one module per service area."""

from onewindow.infra.logs import configure

configure()
