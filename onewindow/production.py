"""`make run-prod`: the production topology on one machine, under the same supervisord as `make run`.

    python -m onewindow.launcher --prod            # what `make run-prod` runs
    python -m onewindow.launcher --prod --dry-run  # print its supervisord configuration

What runs (programs of `<var>/supervisord.conf`):

- `haproxy` in front of everything (onewindow/infra/haproxy.py, `<var>/haproxy.cfg`): the channels on RASA_HOST:RASA_PORT
  (with the Telegram webhook's path to the bots), Rasa's HTTP API on 127.0.0.1:RASA_API_PORT (an admin token), the
  action servers on 127.0.0.1:ACTIONS_PORT (Rasa's action endpoint), the consoles on 127.0.0.1:CONSOLE_PORT (with
  X-Forwarded-For), its stats and metrics on 127.0.0.1:HAPROXY_STATS_PORT;
- `rasa-1`, `rasa-2` (RASA_INSTANCE_PORT + 1, + 2), sharing the PostgreSQL tracker store (TRACKER_DATABASE_URL) and
  the Redis lock store (LOCK_STORE_URL, onewindow.rasa_plugins.lock_store.OrderedLockStore), so any instance takes
  any message and HAProxy needs no stickiness;
- `actions-1`, `actions-2` (ACTIONS_PORT + 1, + 2) and `console-1`, `console-2` (CONSOLE_PORT + 1, + 2; sessions are in
  the database, X-Forwarded-For believed only from HAProxy's address);
- `voice-1`, `voice-2`: two hotline gateways (AudioSocket on VOICE_PORT and VOICE_PORT + 2, control on
  VOICE_CONTROL_PORT and + 2; Asterisk's dialplan spreads the calls, docs/hotline.md);
- with TELEGRAM_TOKEN: `bot-active` and `bot-standby` in webhook mode (TELEGRAM_WEBHOOK_PORT and + 1); HAProxy sends
  the updates to the standby only while the active one is down;
- `prometheus` (Debian's) on 127.0.0.1:PROMETHEUS_PORT scraping every program's /metrics every 5 s, with the alert
  rules of deploy/prometheus/alerts.yml (`<var>/prometheus.yml`, data in `<var>/prometheus/`).

Data: DATABASE_URL (default PRODUCTION_DATABASE_URL, the machine's PostgreSQL), TRACKER_DATABASE_URL (default: the
same server, database `<name>_tracker`), LOCK_STORE_URL (default PRODUCTION_LOCK_STORE_URL, the machine's Redis);
missing PostgreSQL databases are created, the service database migrated and seeded with the catalogue.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from onewindow.infra import haproxy as haproxy_config
from onewindow.infra.prometheus_config import render_prometheus_config
from onewindow.processes import (
    Program,
    action_server,
    haproxy,
    local_url,
    loopback,
    rasa_server,
    staff_console,
    telegram_bot,
    voice_gateway,
    write_endpoints,
)
from onewindow.settings import LOOPBACK
from onewindow.settings import variables as setting
from onewindow.storage.db import create_missing_databases

PRODUCTION_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/onewindow"
PRODUCTION_LOCK_STORE_URL = "redis://127.0.0.1:6379/0"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SCRAPE_INTERVAL = "5s"
INSTANCES = 2  # of Rasa, the action server, the console and the hotline gateway
BOT_WEBHOOK_PATH = "/webhooks/telegram/"  # TELEGRAM_WEBHOOK_URL's path must start with it (a channel path)


@dataclass(frozen=True)
class Data:
    """Where run-prod keeps its data: the service database, the tracker store and the lock store."""

    database_url: str
    tracker_database_url: str
    lock_store_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Data":
        database = setting.DATABASE_URL.read(env) if setting.DATABASE_URL.given(env) else PRODUCTION_DATABASE_URL
        url = make_url(database)
        tracker = setting.TRACKER_DATABASE_URL.read(env) or str(url.set(database=f"{url.database}_tracker"))
        return cls(database, tracker, setting.LOCK_STORE_URL.read(env) or PRODUCTION_LOCK_STORE_URL)

    def environment(self) -> Dict[str, str]:
        return {
            setting.DATABASE_URL.name: self.database_url,
            setting.TRACKER_DATABASE_URL.name: self.tracker_database_url,
            setting.LOCK_STORE_URL.name: self.lock_store_url,
        }


@dataclass(frozen=True)
class ProdPorts:
    """run-prod's ports: the proxy's listeners from the settings, each server on the next ports after them."""

    public: int
    api: int
    stats: int
    actions: int
    console: int
    prometheus: int
    rasa: Tuple[int, ...]
    action_servers: Tuple[int, ...]
    consoles: Tuple[int, ...]
    voice: Tuple[Tuple[int, int], ...]  # (AudioSocket, control)
    bots: Tuple[int, int]  # active, standby

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ProdPorts":
        first, actions, console = (
            setting.RASA_INSTANCE_PORT.read(env),
            setting.ACTIONS_PORT.read(env),
            setting.CONSOLE_PORT.read(env),
        )
        voice, control, bot = (
            setting.VOICE_PORT.read(env),
            setting.VOICE_CONTROL_PORT.read(env),
            setting.TELEGRAM_WEBHOOK_PORT.read(env),
        )
        numbers = range(1, INSTANCES + 1)
        return cls(
            public=setting.RASA_PORT.read(env),
            api=setting.RASA_API_PORT.read(env),
            stats=setting.HAPROXY_STATS_PORT.read(env),
            actions=actions,
            console=console,
            prometheus=setting.PROMETHEUS_PORT.read(env),
            rasa=tuple(first + n for n in numbers),
            action_servers=tuple(actions + n for n in numbers),
            consoles=tuple(console + n for n in numbers),
            voice=tuple((voice + 2 * (n - 1), control + 2 * (n - 1)) for n in numbers),
            bots=(bot, bot + 1),
        )


def bot_webhook_path(env: Mapping[str, str]) -> Optional[str]:
    """The Telegram webhook's path when the bots run (TELEGRAM_TOKEN and TELEGRAM_WEBHOOK_URL), else None."""
    if not setting.TELEGRAM_TOKEN.read(env):
        return None
    path = urlsplit(setting.TELEGRAM_WEBHOOK_URL.read(env) or "").path
    if not path.startswith(BOT_WEBHOOK_PATH):
        raise ValueError(f"run-prod needs TELEGRAM_WEBHOOK_URL with a path under {BOT_WEBHOOK_PATH} (HAProxy's public port)")
    return path.rstrip("/")


def prod_proxy(ports: ProdPorts, host: str, bot_path: Optional[str]) -> haproxy_config.Proxy:
    """HAProxy of run-prod: every listener but the public one on loopback; no stickiness (the lock store orders)."""
    bot = None
    if bot_path is not None:
        bot = haproxy_config.BotWebhook(bot_path, [loopback(ports.bots[0])], [loopback(ports.bots[1])])
    return haproxy_config.onewindow_proxy(
        public=haproxy_config.Address(host, ports.public),
        api=loopback(ports.api),
        rasa=[loopback(port) for port in ports.rasa],
        stats=loopback(ports.stats),
        actions=haproxy_config.Listener(loopback(ports.actions), [loopback(port) for port in ports.action_servers]),
        consoles=haproxy_config.Listener(loopback(ports.console), [loopback(port) for port in ports.consoles]),
        messages_per_instance=setting.ONEWINDOW_MESSAGES_PER_INSTANCE.read(),
        bot=bot,
    )


def scrape_targets(ports: ProdPorts, with_bots: bool) -> Dict[str, List[str]]:
    """Prometheus' jobs: every program's /metrics address."""
    address = f"{LOOPBACK}:{{}}".format
    targets = {
        "rasa": [address(port) for port in ports.rasa],
        "actions": [address(port) for port in ports.action_servers],
        "console": [address(port) for port in ports.consoles],
        "voice": [address(control) for _, control in ports.voice],
        "haproxy": [address(ports.stats)],
        "prometheus": [address(ports.prometheus)],
    }
    if with_bots:
        targets["bot"] = [address(port) for port in ports.bots]
    return targets


def prometheus(config: Path, data: Path, port: int) -> Program:
    command = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address={LOOPBACK}:{port}"]
    return Program("prometheus", command)


def write_prometheus_config(path: Path, ports: ProdPorts, with_bots: bool) -> Path:
    path.write_text(render_prometheus_config(scrape_targets(ports, with_bots), scrape_interval=SCRAPE_INTERVAL))
    return path


def prod_programs(ports: ProdPorts, model: Path, endpoints: Path, var: Path, bot_path: Optional[str]) -> List[Program]:
    """Every program of run-prod (their configs: `<var>/haproxy.cfg`, `<var>/prometheus.yml`); no secret in any."""
    found = [haproxy(var / "haproxy.cfg")]
    found += [rasa_server(n, port, model, endpoints) for n, port in enumerate(ports.rasa, start=1)]
    for n, port in enumerate(ports.action_servers, start=1):
        found.append(renamed(action_server(port), f"actions-{n}"))
    for n, port in enumerate(ports.consoles, start=1):
        console = staff_console(port, ports.api)
        console.env.update(
            {setting.CONSOLE_PROXIES_COUNT.name: "1", setting.CONSOLE_TRUSTED_PROXIES.name: LOOPBACK}  # HAProxy's address
        )
        found.append(renamed(console, f"console-{n}"))
    for n, (audio, control) in enumerate(ports.voice, start=1):
        found.append(renamed(voice_gateway(ports.public, ports.api, audio, control), f"voice-{n}"))
    if bot_path is not None:
        for role, port in zip(("active", "standby"), ports.bots):
            bot = telegram_bot(ports.public)
            bot.env.update({setting.TELEGRAM_WEBHOOK_PORT.name: str(port), setting.TELEGRAM_WEBHOOK_LISTEN.name: LOOPBACK})
            found.append(renamed(bot, f"bot-{role}"))
    found.append(prometheus(var / "prometheus.yml", var / "prometheus", ports.prometheus))
    return found


def renamed(program: Program, name: str) -> Program:
    return Program(name, program.command, dict(program.env), program.start_seconds)


def ready_checks(ports: ProdPorts, with_bots: bool) -> Dict[str, Tuple[str, bool]]:
    """Every program's readiness URL (none needs the API token), HAProxy's last."""
    checks = {f"rasa-{n}": (local_url(port) + "/health/ready", False) for n, port in enumerate(ports.rasa, 1)}
    checks.update({f"actions-{n}": (local_url(p) + "/health/ready", False) for n, p in enumerate(ports.action_servers, 1)})
    checks.update({f"console-{n}": (local_url(p) + "/health/ready", False) for n, p in enumerate(ports.consoles, 1)})
    checks.update({f"voice-{n}": (local_url(c) + "/health/ready", False) for n, (_, c) in enumerate(ports.voice, 1)})
    if with_bots:
        checks.update({f"bot-{r}": (local_url(p) + "/health/ready", False) for r, p in zip(("active", "standby"), ports.bots)})
    checks["prometheus"] = (local_url(ports.prometheus) + "/-/ready", False)
    checks["haproxy"] = (local_url(ports.stats) + "/health/ready", False)  # last: once its checks found every server
    return checks


@dataclass(frozen=True)
class Plan:
    """What the launcher starts for run-prod: the programs, their readiness URLs, what every program's environment
    adds (the data URLs) and the summary printed once they answer."""

    programs: List[Program]
    checks: Dict[str, Tuple[str, bool]]
    env: Dict[str, str]
    summary: str


def prepare(var: Path, env: Mapping[str, str], api_env: Mapping[str, str], dry_run: bool = False) -> Plan:
    """run-prod's files in `var` (endpoints.yml, haproxy.cfg checked with the secret in `api_env`, prometheus.yml) and
    its databases (created if missing, the service database migrated and seeded); with `dry_run`, neither."""
    ports, data = ProdPorts.from_env(env), Data.from_env(env)
    bot_path = bot_webhook_path(env)
    endpoints = var / "endpoints.yml"
    if not dry_run:
        from onewindow.__main__ import seed  # the service database's migrations and the catalogue
        from onewindow.rasa_plugins.events_table import tracker_engine

        create_missing_databases(data.database_url, data.tracker_database_url)
        seed(data.database_url)
        tracker_engine(url=data.tracker_database_url).dispose()  # the events table, before two instances race to make it
        write_endpoints(endpoints, data.tracker_database_url, ports.actions, data.lock_store_url)
        proxy = prod_proxy(ports, setting.RASA_HOST.read(env), bot_path)
        haproxy_config.write(var / "haproxy.cfg", proxy, {**api_env, **data.environment()})
        write_prometheus_config(var / "prometheus.yml", ports, bot_path is not None)
        (var / "prometheus").mkdir(exist_ok=True)
    programs = prod_programs(ports, setting.ONEWINDOW_MODEL.read(env).resolve(), endpoints, var, bot_path)
    return Plan(programs, ready_checks(ports, bot_path is not None), data.environment(), summary(ports, data, bot_path))


def summary(ports: ProdPorts, data: Data, bot_path: Optional[str]) -> str:
    database, tracker = make_url(data.database_url), make_url(data.tracker_database_url)
    bots = f"active :{ports.bots[0]}, standby :{ports.bots[1]} behind {bot_path}" if bot_path else "not started (TELEGRAM_TOKEN)"
    return f"""
OneWindow (production topology) is running; every program under supervisord.
  HAProxy:       channels http://{LOOPBACK}:{ports.public}/webhooks/...  HTTP API :{ports.api} (token)  actions :{ports.actions}
                 consoles http://{LOOPBACK}:{ports.console}/  stats http://{LOOPBACK}:{ports.stats}/stats
  Rasa:          {", ".join(f":{p}" for p in ports.rasa)} (lock store {make_url(data.lock_store_url).render_as_string(hide_password=True)})
  Actions:       {", ".join(f":{p}" for p in ports.action_servers)}    Consoles: {", ".join(f":{p}" for p in ports.consoles)}
  Hotline:       AudioSocket {", ".join(f":{a}" for a, _ in ports.voice)} (control {", ".join(f":{c}" for _, c in ports.voice)})
  Telegram bots: {bots}
  Prometheus:    http://{LOOPBACK}:{ports.prometheus}/  (alerts: deploy/prometheus/alerts.yml)
  Data:          {database.render_as_string(hide_password=True)}, tracker {tracker.render_as_string(hide_password=True)}
  First admin:   DATABASE_URL={database.render_as_string(hide_password=True)} .venv/bin/python -m console create-user --role admin
Press Ctrl-C to stop."""
