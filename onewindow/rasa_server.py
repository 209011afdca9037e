"""`python -m onewindow.rasa_server run ...`: the `rasa` command with OneWindow's speed-ups.

Takes exactly the arguments of `rasa` (for example `run -m models/onewindow.tar.gz
--enable-api`); see onewindow/rasa_speedups.py for what it changes and why.
"""
from __future__ import annotations

import sys

from onewindow.rasa_speedups import install


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
