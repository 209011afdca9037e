#!/usr/bin/env bash
# Install the Debian packages OneWindow needs, only when something is missing.
#   espeak-ng                    speech synthesis behind pyttsx3 (voice replies, the hotline)
#   asterisk-core-sounds-en-wav  recorded 8 kHz English prompts: real human speech for the voice tests
#   libportaudio2                audio devices for the kiosk mode (sounddevice)
#   chromium                     the browser the staff console's Playwright tests drive, headless
#   haproxy                      the proxy in front of the Rasa servers, action servers and consoles (production)
#   prometheus                   the metrics server and promtool (alert rules checked in make test)
#   docker-compose               `docker-compose config` checks the compose file without an engine
#   iproute2                     network namespaces: the multi-host tests
#   kubectl                      `kubectl kustomize` renders the Kubernetes overlays offline (tests/test_deploy.py)
#   dnsmasq-base                 a DNS server standing in for the cluster's: the Kubernetes HAProxy finds pods by DNS (tests/test_deploy.py)
set -eu
needed=(espeak-ng asterisk-core-sounds-en-wav libportaudio2 chromium haproxy prometheus docker-compose iproute2 kubectl dnsmasq-base)
missing=()
for package in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "error: need root to install ${missing[*]} (apt-get install -y ${missing[*]})" >&2; exit 1
  fi
else SUDO=""; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
