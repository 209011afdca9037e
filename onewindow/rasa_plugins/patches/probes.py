"""Patch: `rasa.core.run.configure_app` adds OneWindow's probes to the Rasa server's Sanic app.

Rasa 3.6 has no metrics endpoint and no readiness beyond `/` (which answers once the model is loaded). The app that
`configure_app` returns gets `/health/live`, `/health/ready` (the model loaded, not draining), `/metrics`, the
request counting middleware (onewindow/infra/health.py, metrics.py) and SIGTERM draining. Nothing Rasa computes
changes; the routes are added beside Rasa's own. Checked by tests/test_rasa_patches.py (the hash of configure_app).
"""

from __future__ import annotations

import functools
from typing import Any

import rasa.core.run

from onewindow.infra import health, metrics

ORIGINAL_CONFIGURE_APP = getattr(rasa.core.run.configure_app, "__wrapped__", rasa.core.run.configure_app)
PROCESS = "rasa"


@functools.wraps(ORIGINAL_CONFIGURE_APP)
def configure_app(*args: Any, **kwargs: Any) -> Any:
    app = ORIGINAL_CONFIGURE_APP(*args, **kwargs)

    async def model_loaded() -> bool:
        agent = getattr(app.ctx, "agent", None)
        return agent is not None and bool(agent.is_ready())

    health.install_sanic(app, health.Readiness(PROCESS).add("model", model_loaded))
    metrics.install_sanic(app, PROCESS)
    return app


def install() -> None:
    rasa.core.run.configure_app = configure_app
