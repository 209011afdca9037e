"""Rasa components, policies, the tracker store, the events table and the speed-ups (everything that plugs into Rasa)."""
