"""`python -m onewindow.rasa_plugins.server run ...`: the `rasa` command with OneWindow's patches.

Takes exactly the arguments of `rasa` (for example `run -m models/onewindow.tar.gz
--enable-api`); see onewindow/rasa_plugins/patches/ for what they change and why (the shared HTTP
sessions of the action-server calls are closed when the server stops). With `--enable-api`
the HTTP API requires a token signed with RASA_JWT_SECRET (onewindow/infra/api_auth.py): the secret
is added to Rasa's arguments inside this process, so it never shows on a command line (`ps`),
and without it the server refuses to start.
"""

from __future__ import annotations

import sys
from typing import List

from onewindow.rasa_plugins.patches import install
from onewindow.settings import API_SECRET_VARIABLE, rasa_jwt_secret


def rasa_arguments(argv: List[str]) -> List[str]:
    """The arguments for `rasa`: `argv`, plus `--jwt-secret` from the environment when it enables the HTTP API."""
    if any(arg.startswith(("--jwt-secret", "--auth-token")) for arg in argv):
        raise SystemExit(f"pass the HTTP API's secret in {API_SECRET_VARIABLE}, not on the command line")
    if "--enable-api" not in argv:
        return argv
    # one argument with `=`: a secret that begins with "-" (token_urlsafe makes them) is not taken for an option
    return [*argv, f"--jwt-secret={rasa_jwt_secret()}", "--jwt-method", "HS256"]


def main() -> None:
    arguments = rasa_arguments(sys.argv[1:])
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *arguments]
    rasa_main()


if __name__ == "__main__":
    main()
