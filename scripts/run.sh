#!/usr/bin/env bash
# Serve OneWindow on this machine under supervisord (onewindow/launcher.py): the action server,
# the Rasa servers behind the router (the channels on RASA_PORT, the HTTP API with a token on
# RASA_API_PORT, both on loopback), the hotline gateway, the staff console, and the Telegram bot
# when TELEGRAM_TOKEN is set; a server that stops is started again.
# With --shell, chat in this terminal instead.
set -euo pipefail
cd "$(dirname "$0")/.."

export PYTHONPATH="$PWD"

if [ "${1:-}" = "--shell" ]; then
  RASA=.venv/bin/rasa
  MODEL=${ONEWINDOW_MODEL:-models/onewindow.tar.gz}
  ACTIONS_PORT=${ACTIONS_PORT:-5055}
  RASA_PORT=${RASA_PORT:-5005}
  LOGS=var/log
  mkdir -p "$LOGS"
  endpoints=$(mktemp)
  sed "s#http://localhost:5055/webhook#http://127.0.0.1:${ACTIONS_PORT}/webhook#" endpoints.yml > "$endpoints"
  trap 'kill $(jobs -p) 2>/dev/null; rm -f "$endpoints"' EXIT INT TERM
  echo "==> starting the action server on 127.0.0.1:${ACTIONS_PORT} (log: $LOGS/actions.log)"
  SANIC_HOST=127.0.0.1 "$RASA" run actions --actions actions -p "$ACTIONS_PORT" > "$LOGS/actions.log" 2>&1 &
  "$RASA" shell -m "$MODEL" --endpoints "$endpoints" -p "$RASA_PORT"
  exit 0
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
