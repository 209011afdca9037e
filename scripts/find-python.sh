#!/usr/bin/env bash
# Print the path of a working Python 3.10 interpreter (Rasa 3.6 needs 3.8-3.10).
# Looks on PATH first, then in pyenv, then in common install locations.
set -u

works() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

for candidate in python3.10 python3 python; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if works "$path"; then echo "$path"; exit 0; fi
done

roots=()
if command -v pyenv >/dev/null 2>&1; then roots+=("$(pyenv root)"); fi
roots+=("${PYENV_ROOT:-$HOME/.pyenv}")
for root in "${roots[@]}"; do
  for path in $(ls -d "$root"/versions/3.10*/bin/python3.10 2>/dev/null | sort -rV); do
    if works "$path"; then echo "$path"; exit 0; fi
  done
done

for path in /usr/bin/python3.10 /usr/local/bin/python3.10 /opt/python3.10/bin/python3.10; do
  if [ -x "$path" ] && works "$path"; then echo "$path"; exit 0; fi
done

cat >&2 <<'MSG'
error: no Python 3.10 interpreter found.
OneWindow runs on Rasa 3.6, which needs Python 3.8 to 3.10; we use 3.10.
Looked on PATH (python3.10, python3, python), in pyenv ($(pyenv root)/versions/3.10.*)
and in /usr/bin, /usr/local/bin. Install one, for example:
  pyenv install 3.10.13      or      apt-get install python3.10 python3.10-venv
then run make again.
MSG
exit 1
