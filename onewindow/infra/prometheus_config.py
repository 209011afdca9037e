"""prometheus.yml for OneWindow: one scrape job per program, static targets, the alert rules of deploy/prometheus.

`make run-prod` renders it with the ports it chose; deploy/prometheus/prometheus.yml is the same function's output
for deploy/compose.yml's service names, written by `python -m onewindow.infra.deploy_configs` (tests/test_deploy.py
checks that the committed file is this output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import yaml

ALERT_RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def render_prometheus_config(
    targets: Mapping[str, Sequence[str]],
    rule_files: Optional[Sequence[str]] = None,
    scrape_interval: str = "15s",
    metrics_path: str = "/metrics",
) -> str:
    """prometheus.yml scraping `targets` (job name, e.g. "rasa", to its "host:port" addresses) at `metrics_path`,
    with `rule_files` (default: the absolute path of deploy/prometheus/alerts.yml)."""
    rules = [str(ALERT_RULES)] if rule_files is None else list(rule_files)
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": rules,
        "scrape_configs": [
            {"job_name": job, "metrics_path": metrics_path, "static_configs": [{"targets": list(addresses)}]}
            for job, addresses in targets.items()
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


# deploy/compose.yml's services and ports
COMPOSE_TARGETS: Mapping[str, Sequence[str]] = {
    "rasa": ["rasa-1:5005", "rasa-2:5005"],
    "actions": ["actions-1:5055", "actions-2:5055"],
    "console": ["console-1:5080", "console-2:5080"],
    "voice": ["voice-1:9093", "voice-2:9093"],
    "bot": ["bot-1:8443", "bot-2:8443"],  # the active bot, then its standby
    "haproxy": ["haproxy:8404"],
    "prometheus": ["localhost:9090"],
}
