"""The deployment files that are rendered from code, not written by hand: HAProxy's configuration for
deploy/compose.yml and for the Kubernetes manifests (from onewindow/infra/haproxy.py's description), and Prometheus'
for compose (onewindow/infra/prometheus_config.py).

    python -m onewindow.infra.deploy_configs           # rewrite every rendered file under deploy/
    python -m onewindow.infra.deploy_configs --check   # exit 1, naming the files, when one differs from its rendering

tests/test_deploy.py checks that each committed file equals its rendering, so they cannot drift from the code.

Both HAProxy files are `onewindow_proxy(...)` with every listener on all addresses (the container's network) and the
servers named by DNS, resolved by HAProxy at run time (`resolvers dns` reads the container's /etc/resolv.conf; a
server whose name does not resolve yet starts down instead of stopping HAProxy):

- compose: one `server` per service of deploy/compose.yml (rasa-1, rasa-2, ...: prometheus_config.COMPOSE_TARGETS),
  and the Telegram webhook's path (BOT_WEBHOOK_PATH) to bot-1, with bot-2 as a `backup` server (the standby);
- Kubernetes: one `server-template` per headless Service (rasa, actions, console), `SLOTS` servers each, filled from
  the Service's DNS A records, which hold the addresses of its ready pods. Per-server `maxconn` then applies to each
  pod, which a Service's virtual IP could not do. The names are `<service>.${POD_NAMESPACE}.svc.<cluster domain>`:
  HAProxy's resolver uses no search list, and HAProxy expands POD_NAMESPACE (the pod's namespace, from the downward
  API) when it starts. The slots start empty and the resolvers fill them (no blocking lookup at start).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from onewindow.infra.haproxy import Address, BotWebhook, Listener, Proxy, onewindow_proxy, render
from onewindow.infra.prometheus_config import COMPOSE_TARGETS, render_prometheus_config
from onewindow.settings import PROJECT_ROOT
from onewindow.settings import variables as setting

DEPLOY = PROJECT_ROOT / "deploy"
EVERYWHERE = "0.0.0.0"
STATS_PORT = 8404  # HAProxy's own /metrics, /stats and /health/live
RESOLVERS = "dns"
# servers HAProxy keeps for each backend in Kubernetes: at least the most pods an autoscaler or an overlay may run
SLOTS: Mapping[str, int] = {"rasa": 10, "actions": 10, "consoles": 4}
# the headless Service behind each backend of the proxy (deploy/kubernetes/base)
SERVICES: Mapping[str, str] = {"rasa": "rasa", "actions": "actions", "consoles": "console"}
# the Telegram webhook's path in every deployment (TELEGRAM_WEBHOOK_URL's path): compose's HAProxy sends it to the
# active bot and, while that one is down, to the standby; the Kubernetes Ingress sends it to the bot's Service
BOT_WEBHOOK_PATH = "/webhooks/telegram"


def _address(target: str) -> Address:
    host, port = target.rsplit(":", 1)
    return Address(host, int(port))


def deploy_proxy(
    rasa: Sequence[Address], actions: Sequence[Address], consoles: Sequence[Address], bot: Optional[BotWebhook] = None
) -> Proxy:
    """The proxy of the container deployments: every listener on the container's addresses, on the default ports."""

    def bind(port: int) -> Address:
        return Address(EVERYWHERE, port)

    return onewindow_proxy(
        public=bind(setting.RASA_PORT.default_value),
        api=bind(setting.RASA_API_PORT.default_value),
        rasa=rasa,
        stats=bind(STATS_PORT),
        actions=Listener(bind(setting.ACTIONS_PORT.default_value), actions),
        consoles=Listener(bind(setting.CONSOLE_PORT.default_value), consoles),
        bot=bot,
    )


def _with_resolvers(text: str, init_addr: str) -> str:
    """`text` (a rendered haproxy.cfg) with servers resolved by DNS at run time; at start, each server's address is
    found as `init_addr` says (ending in `none`: a name that does not resolve yet starts the server down)."""
    section = "\n".join(
        [
            f"resolvers {RESOLVERS}",
            "    parse-resolv-conf",
            "    accepted_payload_size 8192",
            "    resolve_retries 3",
            "    timeout resolve 1s",
            "    timeout retry 1s",
            "    hold valid 5s",
            "    hold obsolete 10s",
        ]
    )
    defaults = f"\ndefaults\n    default-server init-addr {init_addr} resolvers {RESOLVERS}\n"
    if text.count("\ndefaults\n") != 1:
        raise ValueError("the rendered configuration has no single defaults section")
    return text.replace("\ndefaults\n", f"\n{section}\n{defaults}", 1)


def compose_haproxy() -> str:
    """haproxy.cfg for deploy/compose.yml: its Rasa servers, action servers and consoles by service name, and the
    bot's webhook to bot-1, with bot-2 as its standby."""
    servers = {job: [_address(target) for target in targets] for job, targets in COMPOSE_TARGETS.items()}
    active, standby = servers["bot"]
    bot = BotWebhook(BOT_WEBHOOK_PATH, [active], [standby])
    proxy = deploy_proxy(servers["rasa"], servers["actions"], servers["console"], bot)
    return _with_resolvers(render(proxy), "last,libc,none")


def kubernetes_haproxy(cluster_domain: str = "cluster.local") -> str:
    """haproxy.cfg for deploy/kubernetes: each backend a `server-template` over its headless Service's pods."""

    def service(backend: str, port: int) -> Address:
        return Address(f"{SERVICES[backend]}.${{POD_NAMESPACE}}.svc.{cluster_domain}", port)

    proxy = deploy_proxy(
        [service("rasa", setting.RASA_PORT.default_value)],
        [service("actions", setting.ACTIONS_PORT.default_value)],
        [service("consoles", setting.CONSOLE_PORT.default_value)],
    )
    text = _with_resolvers(render(proxy), "none")  # the resolvers fill the slots within a second of the start
    for backend, slots in SLOTS.items():
        line = re.compile(rf"^    server {backend}-1 (\S+) (.*)$", re.M)
        text, found = line.subn(rf'    server-template {backend}- {slots} "\1" \2', text)
        if found != 1:
            raise ValueError(f"the rendered configuration has no single server line for backend {backend}")
    return text


def compose_prometheus() -> str:
    """deploy/prometheus/prometheus.yml: every program of deploy/compose.yml scraped, the alert rules beside it."""
    return render_prometheus_config(COMPOSE_TARGETS, ["alerts.yml"])


def _header(text: str, comment: str) -> str:
    return f"# {comment}\n# Rendered by `python -m onewindow.infra.deploy_configs`: change the code, not this file.\n{text}"


RENDERED: Dict[Path, Callable[[], str]] = {
    DEPLOY / "haproxy" / "haproxy.cfg": lambda: _header(compose_haproxy(), "HAProxy in front of deploy/compose.yml."),
    DEPLOY / "kubernetes" / "base" / "haproxy.cfg": lambda: _header(
        kubernetes_haproxy(), "HAProxy in front of the Kubernetes Services (deploy/kubernetes/base/haproxy.yaml)."
    ),
    DEPLOY / "prometheus" / "prometheus.yml": lambda: _header(compose_prometheus(), "Prometheus for deploy/compose.yml."),
}


def stale() -> List[Path]:
    """The rendered files whose committed text differs from their rendering now."""
    return [path for path, rendering in RENDERED.items() if not path.exists() or path.read_text() != rendering()]


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m onewindow.infra.deploy_configs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ from their rendering")
    args = parser.parse_args(list(argv))
    if args.check:
        differing = stale()
        for path in differing:
            print(f"{path.relative_to(PROJECT_ROOT)} differs from its rendering", file=sys.stderr)
        return 1 if differing else 0
    for path, rendering in RENDERED.items():
        path.write_text(rendering())
        print(f"wrote {path.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
