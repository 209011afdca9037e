"""Custom actions for the OneWindow assistant, one module per service area."""
from onewindow.logs import configure

configure()
