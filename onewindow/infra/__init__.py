"""Infrastructure: the local router, structured logs, loopback helpers and the HTTP API's signed tokens."""
