"""The service database: engine and sessions, the SQLAlchemy models, retention and the demo data."""
