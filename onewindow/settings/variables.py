"""Every environment variable OneWindow reads, declared once: name, type, default, what it does, who reads it.

docs/configuration.md is generated from this file (`python -m onewindow.settings --update-docs`).
"""

from __future__ import annotations

import os
from pathlib import Path

from onewindow.settings.kinds import (
    CALLING_CODE,
    COUNT,
    FLAG,
    LOG_LEVEL,
    NUMBER,
    OPTIONAL_TEXT,
    OPTIONAL_URL,
    PATH,
    PORT,
    TEXT,
    URL,
    WHOLE,
    WORD,
)
from onewindow.settings.registry import Env, declare

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
EVERY_PROCESS = ("rasa", "actions", "console", "bot", "voice", "cli")
BACKEND_USERS = ("actions", "rasa", "bot", "voice", "console", "cli")  # the service database and its rules


def in_project(*parts: str) -> str:
    return str(PROJECT_ROOT.joinpath(*parts))


# --- shared by every process --------------------------------------------------------------------

DATABASE_URL = declare(
    "DATABASE_URL",
    TEXT,
    lambda env: f"sqlite:///{in_project('var', 'onewindow.db')}",
    "the service database (SQLAlchemy URL); `postgresql://user@host/db` for PostgreSQL",
    BACKEND_USERS,
    shown_default="`sqlite:///<project>/var/onewindow.db`",
)
DATABASE_POOL_SIZE = declare(
    "DATABASE_POOL_SIZE",
    WHOLE,
    "5",
    "PostgreSQL: connections each process keeps open to the service database (SQLAlchemy's pool_size)",
    BACKEND_USERS,
)
DATABASE_MAX_OVERFLOW = declare(
    "DATABASE_MAX_OVERFLOW",
    WHOLE,
    "5",
    "PostgreSQL: connections a process may open beyond the pool at a peak, closed when returned (max_overflow)",
    BACKEND_USERS,
)
DATABASE_POOL_RECYCLE = declare(
    "DATABASE_POOL_RECYCLE",
    NUMBER,
    "1800",
    "PostgreSQL: seconds after which a pooled connection is replaced (before firewalls or proxies drop idle ones)",
    BACKEND_USERS,
)
DATABASE_CONNECT_TIMEOUT = declare(
    "DATABASE_CONNECT_TIMEOUT",
    COUNT,
    "5",
    "PostgreSQL: seconds one connection attempt may take (libpq's connect_timeout; an unreachable host)",
    BACKEND_USERS,
)
DATABASE_CONNECT_RETRY_SECONDS = declare(
    "DATABASE_CONNECT_RETRY_SECONDS",
    NUMBER,
    "1",
    "PostgreSQL: how long a refused connection is retried (exponential backoff from 50 ms) before the request fails; "
    "during an outage each later attempt waits twice as long as the one before (at most 4 s) and requests fail at once",
    BACKEND_USERS,
)
ONEWINDOW_CATALOGUE = declare(
    "ONEWINDOW_CATALOGUE",
    PATH,
    lambda env: in_project("catalogue"),
    "the catalogue folder that seeding and the NLU lookups load",
    ("cli",),
    shown_default="`<project>/catalogue`",
)
ONEWINDOW_BOOKING_DAYS = declare("ONEWINDOW_BOOKING_DAYS", WHOLE, "60", "how many days ahead citizens may book", BACKEND_USERS)
ONEWINDOW_CATALOGUE_TTL = declare(
    "ONEWINDOW_CATALOGUE_TTL", NUMBER, "30", "seconds a running server keeps its in-memory copy of the catalogue", BACKEND_USERS
)
ONEWINDOW_COUNTRY_CODE = declare(
    "ONEWINDOW_COUNTRY_CODE",
    CALLING_CODE,
    "61",
    'the city\'s country calling code: "+61 412 345 678" and "61412345678" are stored as "0412345678"',
    BACKEND_USERS,
)
RASA_JWT_SECRET = declare(
    "RASA_JWT_SECRET",
    TEXT,
    "",
    "signs the tokens of Rasa's HTTP API (32 characters or more); a server that needs it refuses to start without",
    ("rasa", "proxy", "console", "voice", "launcher", "cli"),
    shown_default="none (`make run` makes `var/api-secret` once, mode 0600)",
)
ONEWINDOW_CHANNEL_SECRET = declare(
    "ONEWINDOW_CHANNEL_SECRET",
    OPTIONAL_TEXT,
    "",
    "signs sender ids, so only the bot and the hotline can speak for a Telegram chat or a caller's number",
    ("bot", "voice", "actions"),
    shown_default="none (`var/channel.key`, made once, mode 0600)",
)
ONEWINDOW_DRAIN_SECONDS = declare(
    "ONEWINDOW_DRAIN_SECONDS",
    NUMBER,
    "3",
    "seconds a server keeps answering /health/ready with 503 after SIGTERM before it stops listening (then Sanic lets "
    "requests in flight finish for SANIC_GRACEFUL_SHUTDOWN_TIMEOUT seconds)",
    ("rasa", "actions", "console"),
)
ONEWINDOW_LOG_LEVEL = declare("ONEWINDOW_LOG_LEVEL", LOG_LEVEL, "INFO", "the level of OneWindow's JSON logs", EVERY_PROCESS)
ONEWINDOW_LOG_SALT = declare(
    "ONEWINDOW_LOG_SALT", TEXT, "onewindow", "the salt of the pseudonyms in logs; set a secret value in production", EVERY_PROCESS
)
ONEWINDOW_RETENTION_DAYS = declare(
    "ONEWINDOW_RETENTION_DAYS",
    WHOLE,
    "90",
    "`python -m console purge` forgets conversations idle for longer than this many days",
    ("console",),
)

# --- where the servers listen (`make run`, `make shell`) ----------------------------------------

ONEWINDOW_VAR = declare(
    "ONEWINDOW_VAR",
    PATH,
    lambda env: in_project("var"),
    "where `make run` keeps its supervisord configuration, socket, secrets, endpoints.yml and logs",
    ("launcher",),
    shown_default="`<project>/var`",
)
ONEWINDOW_MODEL = declare(
    "ONEWINDOW_MODEL",
    PATH,
    lambda env: in_project("models", "onewindow.tar.gz"),
    "the trained Rasa model the servers load",
    ("launcher", "harness"),
    shown_default="`<project>/models/onewindow.tar.gz`",
)
RASA_HOST = declare("RASA_HOST", TEXT, LOOPBACK, "the address of HAProxy's public port (the channels only)", ("launcher",))
RASA_PORT = declare("RASA_PORT", PORT, "5005", "HAProxy's public port: the channels (/webhooks/...) and /health", ("launcher",))
RASA_API_PORT = declare(
    "RASA_API_PORT", PORT, "5100", "HAProxy's internal listener for Rasa's HTTP API, always on 127.0.0.1", ("launcher",)
)
RASA_INSTANCES = declare(
    "RASA_INSTANCES",
    COUNT,
    lambda env: "2" if (os.cpu_count() or 1) >= 2 else "1",
    "how many Rasa servers run behind HAProxy",
    ("launcher",),
    shown_default="2 (1 on a one-core machine)",
)


def _first_instance_port(env: Env) -> str:
    return str(RASA_PORT.read(env) + 100)


RASA_INSTANCE_PORT = declare(
    "RASA_INSTANCE_PORT",
    PORT,
    _first_instance_port,
    "Rasa server n listens on this port + n",
    ("launcher",),
    shown_default="`RASA_PORT` + 100",
)
ACTIONS_PORT = declare("ACTIONS_PORT", PORT, "5055", "the action server's port (on 127.0.0.1)", ("launcher",))
HAPROXY_STATS_PORT = declare(
    "HAPROXY_STATS_PORT", PORT, "8404", "HAProxy's own /metrics, /stats and /health/ready (on 127.0.0.1)", ("launcher",)
)
PROMETHEUS_PORT = declare(
    "PROMETHEUS_PORT", PORT, "9090", "`make run-prod`: the Prometheus server's port (on 127.0.0.1)", ("launcher",)
)
ONEWINDOW_MESSAGES_PER_INSTANCE = declare(
    "ONEWINDOW_MESSAGES_PER_INSTANCE",
    COUNT,
    "2",
    "messages HAProxy lets each Rasa server work on at once (its `maxconn`); the rest wait in its queue, oldest first",
    ("launcher", "harness"),
)

# --- how the clients reach Rasa -----------------------------------------------------------------

RASA_URL = declare(
    "RASA_URL",
    URL,
    f"http://{LOOPBACK}:{RASA_PORT.default}",
    "the bot's and the hotline's Rasa: its REST channel (HAProxy's public port)",
    ("bot", "voice"),
)
CONSOLE_RASA_URL = declare(
    "RASA_URL",
    URL,
    f"http://{LOOPBACK}:{RASA_API_PORT.default}",
    "the console's Rasa: its HTTP API (HAProxy's internal listener), for staff replies and hand-backs",
    ("console",),
)
RASA_TIMEOUT = declare("RASA_TIMEOUT", NUMBER, "8", "seconds the bot and the hotline wait for Rasa's answer", ("bot", "voice"))
RASA_API_URL = declare(
    "RASA_API_URL",
    OPTIONAL_URL,
    "",
    "Rasa's HTTP API, where the hotline adds the turns it answers itself (repeat, reprompt); unset, they are only in the call transcript",
    ("voice",),
    shown_default="none (`make run` sets it)",
)
RASA_ENDPOINTS = declare(
    "RASA_ENDPOINTS",
    PATH,
    lambda env: in_project("endpoints.yml"),
    "Rasa's endpoints.yml: the tracker store the console's transcripts and the bot's /forget read",
    ("console", "bot"),
    shown_default="`<project>/endpoints.yml`",
)

TRACKER_DATABASE_URL = declare(
    "TRACKER_DATABASE_URL",
    OPTIONAL_TEXT,
    "",
    "the database Rasa keeps conversations in (SQLAlchemy URL, e.g. `postgresql://onewindow@db:5432/tracker`); blank: "
    "`<ONEWINDOW_VAR>/tracker.db`; `python -m onewindow migrate` creates its table",
    ("launcher", "cli"),
)
TRACKER_POOL_SIZE = declare(
    "TRACKER_POOL_SIZE",
    WHOLE,
    "2",
    "PostgreSQL tracker store: connections each Rasa instance keeps open (Rasa's own default, SQL_POOL_SIZE, is 50)",
    ("rasa",),
)
TRACKER_MAX_OVERFLOW = declare(
    "TRACKER_MAX_OVERFLOW",
    WHOLE,
    "3",
    "PostgreSQL tracker store: connections a Rasa instance may open beyond the pool (Rasa's SQL_MAX_OVERFLOW: 100)",
    ("rasa",),
)
LOCK_STORE_URL = declare(
    "LOCK_STORE_URL",
    OPTIONAL_TEXT,
    "",
    "the lock store every Rasa instance shares, so one conversation's messages run one at a time in arrival order "
    "(`redis://host:6379/0` or `postgresql://...`); blank: each instance's own in-memory lock store",
    ("launcher",),
)

# --- the staff console --------------------------------------------------------------------------

CONSOLE_HOST = declare("CONSOLE_HOST", TEXT, LOOPBACK, "the address the staff console listens on", ("console",))
CONSOLE_PORT = declare("CONSOLE_PORT", PORT, "5080", "the staff console's port", ("console", "launcher"))
CONSOLE_SESSION_MINUTES = declare("CONSOLE_SESSION_MINUTES", WHOLE, "480", "a staff login lasts this long", ("console",))
CONSOLE_IDLE_MINUTES = declare(
    "CONSOLE_IDLE_MINUTES", WHOLE, "30", "a staff session without a request for this long has ended", ("console",)
)
CONSOLE_SECURE_COOKIES = declare(
    "CONSOLE_SECURE_COOKIES", FLAG, "no", "set the Secure flag on the console's cookies (behind HTTPS)", ("console",)
)
CONSOLE_LOW_CONFIDENCE = declare(
    "CONSOLE_LOW_CONFIDENCE", NUMBER, "0.5", "Improve lists messages understood with less confidence than this", ("console",)
)
CONSOLE_PROXIES_COUNT = declare(
    "CONSOLE_PROXIES_COUNT",
    WHOLE,
    "0",
    "reverse proxies in front of the console: then X-Forwarded-For gives the source address",
    ("console",),
)
CONSOLE_TRUSTED_PROXIES = declare(
    "CONSOLE_TRUSTED_PROXIES",
    OPTIONAL_TEXT,
    "",
    "with CONSOLE_PROXIES_COUNT: the proxies' addresses (comma-separated); X-Forwarded-For is then believed only on a "
    "connection from one of them, any other request counts from its own address; blank: from any connection",
    ("console",),
)

# --- the hotline --------------------------------------------------------------------------------

VOICE_HOST = declare("VOICE_HOST", TEXT, LOOPBACK, "the address the hotline's AudioSocket server listens on", ("voice",))
VOICE_PORT = declare("VOICE_PORT", PORT, "9092", "the hotline's AudioSocket port (Asterisk connects here)", ("voice", "launcher"))
VOICE_CONTROL_PORT = declare("VOICE_CONTROL_PORT", PORT, "9093", "the hotline's control port (/health)", ("voice", "launcher"))
VOSK_MODEL_PATH = declare(
    "VOSK_MODEL_PATH",
    OPTIONAL_TEXT,
    "",
    "the vosk speech model folder (scripts/get-vosk-model.sh); unset, callers use the keypad and voice notes are not heard",
    ("voice", "bot", "launcher"),
    shown_default="none",
)
VOSK_MODEL_LANGUAGE = declare(
    "VOSK_MODEL_LANGUAGE",
    OPTIONAL_TEXT,
    "",
    "the speech model's language when its folder name does not say",
    ("voice",),
    shown_default="none",
)
ONEWINDOW_SILENCE_ACTION = declare(
    "ONEWINDOW_SILENCE_ACTION",
    WORD,
    "person",
    "what a silent caller gets after one reprompt: person (a handoff) or hangup (goodbye)",
    ("voice",),
)
VOICE_RECOGNITION_WORKERS = declare(
    "VOICE_RECOGNITION_WORKERS",
    WHOLE,
    lambda env: str(os.cpu_count() or 2),
    "speech recognition worker processes (at least 1)",
    ("voice",),
    shown_default="the number of cores",
)
VOICE_RECOGNITION_NICE = declare(
    "VOICE_RECOGNITION_NICE", WHOLE, "10", "how much lower the recognition workers' CPU priority is", ("voice",)
)
VOICE_WARM_RECOGNISERS = declare(
    "VOICE_WARM_RECOGNISERS", WHOLE, "6", "recognisers each worker keeps ready for the next call", ("voice",)
)

# --- the Telegram bot ---------------------------------------------------------------------------

TELEGRAM_TOKEN = declare(
    "TELEGRAM_TOKEN",
    OPTIONAL_TEXT,
    "",
    "the bot's token from @BotFather; `make run` starts the bot only with it, staff replies reach Telegram with it",
    ("bot", "actions", "launcher"),
    shown_default="none",
)
TELEGRAM_API_URL = declare(
    "TELEGRAM_API_URL", TEXT, "https://api.telegram.org/bot", "the Bot API's address, before the token", ("bot", "actions")
)
TELEGRAM_FILE_URL = declare(
    "TELEGRAM_FILE_URL",
    TEXT,
    "https://api.telegram.org/file/bot",
    "where the bot downloads voice notes, before the token",
    ("bot",),
)
TELEGRAM_WEBHOOK_URL = declare(
    "TELEGRAM_WEBHOOK_URL",
    OPTIONAL_TEXT,
    "",
    "the public HTTPS address of the bot's webhook; unset, the bot polls",
    ("bot", "launcher"),
    shown_default="none (long polling)",
)
TELEGRAM_SECRET_TOKEN = declare(
    "TELEGRAM_SECRET_TOKEN",
    OPTIONAL_TEXT,
    "",
    "the webhook's secret (1-256 characters: A-Z, a-z, 0-9, _ and -); needed with TELEGRAM_WEBHOOK_URL",
    ("bot",),
    shown_default="none",
)
TELEGRAM_WEBHOOK_LISTEN = declare(
    "TELEGRAM_WEBHOOK_LISTEN", TEXT, LOOPBACK, "the address the bot's webhook server listens on", ("bot",)
)
TELEGRAM_WEBHOOK_PORT = declare("TELEGRAM_WEBHOOK_PORT", PORT, "8443", "the bot's webhook server port", ("bot",))
TELEGRAM_UPDATE_LEASE = declare(
    "TELEGRAM_UPDATE_LEASE",
    NUMBER,
    "15",
    "seconds a webhook update stays with the bot process handling it (renewed meanwhile) before another may take it over",
    ("bot",),
)
