"""The Rasa release OneWindow's patches and plugins are written against, and the check that refuses any other.

onewindow/rasa_plugins/patches/ replaces Rasa internals (private methods, module attributes) that
a Rasa release may change without notice, so every process that loads a OneWindow plugin into Rasa
checks the version first (onewindow/rasa_plugins/__init__.py). rasa-sdk is not checked: the action
server uses only its public API (Action, Tracker, CollectingDispatcher, FormValidationAction).
"""

from __future__ import annotations

PINNED_RASA = "3.6.21"  # the same pin as constraints.txt and pyproject.toml


def installed_rasa_version() -> str:
    """The version of the Rasa package this process imports."""
    from rasa.version import __version__

    return str(__version__)


def require_pinned_rasa() -> None:
    """Stop the process (SystemExit) unless the imported Rasa is the pinned release."""
    found = installed_rasa_version()
    if found != PINNED_RASA:
        raise SystemExit(
            f"OneWindow patches Rasa {PINNED_RASA} internals; found {found}: install the pinned version with make install"
        )
