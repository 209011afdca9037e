"""The tracker store endpoints.yml configures, by this name, with the usual SQL tracker store settings:

    tracker_store:
      type: onewindow.rasa_plugins.tracker_store.LeanSQLTrackerStore
      dialect: sqlite
      db: var/tracker.db

It overrides private methods of Rasa's SQLTrackerStore, so it lives with the other patches
(onewindow/rasa_plugins/patches/tracker_store.py).
"""

from onewindow.rasa_plugins.patches.tracker_store import LeanSQLTrackerStore

__all__ = ["LeanSQLTrackerStore"]
