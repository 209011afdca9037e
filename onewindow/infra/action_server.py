"""`python -m onewindow.infra.action_server --actions actions -p 5055`: rasa-sdk's action server with OneWindow's probes.

Builds rasa-sdk's own Sanic app (`rasa_sdk.endpoint.create_app`, its public API: `/webhook`, `/actions`, `/health`
unchanged) and adds `/health/live`, `/health/ready` (the service database reachable, not draining), `/metrics` and
the request counting middleware (onewindow/infra/health.py, metrics.py), then serves it on SANIC_HOST like
`rasa run actions`, in one worker.
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from rasa_sdk.endpoint import create_app

from onewindow.infra import health, metrics
from onewindow.infra.logs import configure
from onewindow.settings.variables import LOOPBACK
from onewindow.storage.db import make_engine

PROCESS = "actions"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", default="actions", help="the package of the custom actions")
    parser.add_argument("-p", "--port", type=int, default=5055)
    parser.add_argument("--host", default=LOOPBACK)
    args = parser.parse_args(argv)
    configure()
    app = create_app(args.actions, cors_origins=None)
    engine = make_engine()
    health.install_sanic(app, health.Readiness(PROCESS).add("database", health.database_check(engine)))
    metrics.install_sanic(app, PROCESS)
    app.run(args.host, args.port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
