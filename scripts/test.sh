#!/usr/bin/env bash
# Install everything the test suite needs (apt + pip) and run it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dnsmasq >/dev/null 2>&1 && [ ! -x /usr/sbin/dnsmasq ]; then
  # Real DNS server for the network-layer tests (loopback only).
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base >/dev/null
fi
# chromium (headless): the HTML report is rendered and screenshotted in a real browser.
# tmux: mgn viz is driven in a real terminal (send keys, capture the pane).
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if ! command -v jq >/dev/null 2>&1; then
  # jq: what the yq of the test extra wraps (the CI example deploy-federated.sh reads YAML with yq).
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m pytest "$@"
