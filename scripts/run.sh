#!/usr/bin/env bash
# Serve OneWindow on this machine under supervisord (onewindow/launcher.py): the action server,
# the Rasa servers behind HAProxy (the channels on RASA_PORT, the HTTP API with a token on
# RASA_API_PORT, both on loopback), the hotline gateway, the staff console, and the Telegram bot
# when TELEGRAM_TOKEN is set; a server that stops is started again.
# With --shell, chat in this terminal instead. The commands of every server: onewindow/processes.py.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--shell" ]; then
  # the action server, and `rasa shell` in this terminal (onewindow/launcher.py, onewindow/processes.py)
  exec .venv/bin/python -m onewindow.launcher --shell
fi

# The staff console: the first admin account is made here, in the terminal, never with a default password.
first_admin="cd $(pwd) && .venv/bin/python -m console create-user --username admin --role admin"
if [ -z "$(.venv/bin/python -m console list-users)" ]; then
  if [ -t 0 ]; then
    echo "==> the staff console has no accounts yet: create the first admin"
    read -r -p "Username for the first admin [admin]: " admin_name
    for _ in 1 2 3; do
      .venv/bin/python -m console create-user --username "${admin_name:-admin}" --role admin && break
    done
  fi
  if [ -z "$(.venv/bin/python -m console list-users)" ]; then
    echo "==> the staff console has no accounts yet; create the first admin with:"
    echo "      $first_admin"
  fi
fi
# Everything else under supervisord, in the foreground: Ctrl-C stops it all.
exec .venv/bin/python -m onewindow.launcher
