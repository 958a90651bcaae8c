#!/usr/bin/env bash
# Install everything the test suite needs (apt + pip) and run it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dnsmasq >/dev/null 2>&1 && [ ! -x /usr/sbin/dnsmasq ]; then
  # Real DNS server for the network-layer tests (loopback only).
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base >/dev/null
fi
if ! command -v jq >/dev/null 2>&1; then
  # jq: what the yq of the test extra wraps (the CI example deploy-federated.sh reads YAML with yq).
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m pytest "$@"
