"""Infrastructure: HAProxy's configuration, structured logs, loopback helpers and the HTTP API's signed tokens."""
