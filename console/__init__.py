"""The OneWindow staff console: a Sanic web application (python -m console serve)."""
