"""Rasa components, policies, the tracker store, the events table and the patches (everything that plugs into Rasa).

Importing any of them checks first that the imported Rasa is the release they are written against
(onewindow/rasa_plugins/pinned.py): Rasa imports a component, policy or tracker store by its module
path, which runs this file first.
"""

from onewindow.rasa_plugins.pinned import require_pinned_rasa

require_pinned_rasa()
