#!/usr/bin/env bash
# Serve OneWindow on this machine: the action server and the Rasa server (REST channel
# and HTTP API) on localhost, the hotline gateway (AudioSocket for Asterisk), the staff
# console, and the Telegram bot when TELEGRAM_TOKEN is set.
# With --shell, chat in this terminal instead.
set -euo pipefail
cd "$(dirname "$0")/.."

RASA=.venv/bin/rasa
MODEL=${ONEWINDOW_MODEL:-models/onewindow.tar.gz}
ACTIONS_PORT=${ACTIONS_PORT:-5055}
RASA_PORT=${RASA_PORT:-5005}
LOGS=var/log
mkdir -p "$LOGS"
export SANIC_HOST=127.0.0.1 PYTHONPATH="$PWD"

endpoints=$(mktemp)
sed "s#http://localhost:5055/webhook#http://127.0.0.1:${ACTIONS_PORT}/webhook#" endpoints.yml > "$endpoints"
trap 'kill $(jobs -p) 2>/dev/null; rm -f "$endpoints"' EXIT INT TERM

echo "==> starting the action server on 127.0.0.1:${ACTIONS_PORT} (log: $LOGS/actions.log)"
"$RASA" run actions --actions actions -p "$ACTIONS_PORT" > "$LOGS/actions.log" 2>&1 &

if [ "${1:-}" = "--shell" ]; then
  "$RASA" shell -m "$MODEL" --endpoints "$endpoints" -p "$RASA_PORT"
  exit 0
fi

# Several Rasa instances use several cores; the router in front queues the messages and keeps
# each conversation's messages in order (onewindow/router.py).
INSTANCES=${RASA_INSTANCES:-$([ "$(nproc)" -ge 2 ] && echo 2 || echo 1)}
echo "==> starting $INSTANCES Rasa server(s) behind the router on 127.0.0.1:${RASA_PORT} (logs: $LOGS/); loading the model takes a few seconds"
upstreams=()
status_ports=("$RASA_PORT")
for n in $(seq 1 "$INSTANCES"); do
  port=$((RASA_PORT + 100 + n))
  .venv/bin/python -m onewindow.rasa_server run -m "$MODEL" --enable-api -i 127.0.0.1 -p "$port" \
    --endpoints "$endpoints" --credentials credentials.yml > "$LOGS/rasa-$n.log" 2>&1 &
  upstreams+=(--upstream "http://127.0.0.1:$port")
  status_ports+=("$port")
done
.venv/bin/python -m onewindow.router --port "$RASA_PORT" "${upstreams[@]}" > "$LOGS/router.log" 2>&1 &

for _ in $(seq 1 120); do
  ready=1
  for port in "${status_ports[@]}"; do
    curl -fs "http://127.0.0.1:${port}/status" 2>/dev/null | grep -q model_id || ready=0
  done
  if [ "$ready" = 1 ]; then break; fi
  if ! kill -0 $(jobs -p) 2>/dev/null; then echo "a server stopped; see $LOGS/" >&2; exit 1; fi
  sleep 1
done

VOICE_PORT=${VOICE_PORT:-9092}
VOICE_CONTROL_PORT=${VOICE_CONTROL_PORT:-9093}
RASA_URL="http://127.0.0.1:${RASA_PORT}" VOICE_PORT=$VOICE_PORT VOICE_CONTROL_PORT=$VOICE_CONTROL_PORT \
  .venv/bin/python -m voice gateway > "$LOGS/voice.log" 2>&1 &

if [ -n "${TELEGRAM_TOKEN:-}" ]; then
  mode=$([ -n "${TELEGRAM_WEBHOOK_URL:-}" ] && echo "webhook at $TELEGRAM_WEBHOOK_URL" || echo "long polling")
  telegram="running ($mode; log: $LOGS/bot.log)"
  RASA_URL="http://127.0.0.1:${RASA_PORT}" .venv/bin/python -m bot > "$LOGS/bot.log" 2>&1 &
else
  telegram="not started: set TELEGRAM_TOKEN (a token from @BotFather) to chat in Telegram; see bot/README.md"
fi
if [ -z "${VOSK_MODEL_PATH:-}" ]; then
  telegram="$telegram
                 voice notes: set VOSK_MODEL_PATH (scripts/get-vosk-model.sh downloads the English model)"
fi

# The staff console: the first admin account is made here, in the terminal, never with a default password.
CONSOLE_PORT=${CONSOLE_PORT:-5080}
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
RASA_URL="http://127.0.0.1:${RASA_PORT}" CONSOLE_HOST=127.0.0.1 CONSOLE_PORT=$CONSOLE_PORT \
  .venv/bin/python -m console serve > "$LOGS/console.log" 2>&1 &
for _ in $(seq 1 60); do
  curl -fs -o /dev/null "http://127.0.0.1:${CONSOLE_PORT}/login" && break
  sleep 0.5
done

cat <<MSG

OneWindow is running on the embedded default (SQLite file var/onewindow.db, ${INSTANCES} Rasa instance(s)).
  REST channel:  curl -s http://127.0.0.1:${RASA_PORT}/webhooks/rest/webhook \\
                   -d '{"sender": "me", "message": "I just had a baby"}'
  HTTP API:      http://127.0.0.1:${RASA_PORT}/status  (Rasa HTTP API, enabled)
  Action server: http://127.0.0.1:${ACTIONS_PORT}/health
  Telegram bot:  $telegram
  Hotline:       AudioSocket on 127.0.0.1:${VOICE_PORT} (control: http://127.0.0.1:${VOICE_CONTROL_PORT}/health; log: $LOGS/voice.log)
                 Asterisk dialplan: see voice/README.md ("Connect Asterisk"); kiosk: .venv/bin/python -m voice kiosk
  Staff console: http://127.0.0.1:${CONSOLE_PORT}/  (log: $LOGS/console.log; accounts: .venv/bin/python -m console create-user --help)
  Terminal chat: make shell   (in another terminal, on other ports: ACTIONS_PORT=5056 RASA_PORT=5006 make shell)
Press Ctrl-C to stop.
MSG
wait
