#!/usr/bin/env bash
# Install everything nazbench's controller needs on a Debian 12 machine: apt packages
# (podman, runc, debootstrap, iptables, redis-server and postgresql for the tests, chromium to
# check the report in a real browser) and the Python
# environment in .venv. Safe to re-run; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv python3-apt podman runc debootstrap iptables nftables uidmap redis-server postgresql chromium make git)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# redis-server and postgresql start system instances (6379, 5432); the tests start their own.

stamp=.venv/.nazbench-requirements
want=$(cat requirements.txt requirements-hosts.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q -r requirements.txt -c constraints.txt 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import ansible, molecule, naz, redis, prometheus_client, psycopg, matplotlib, nazbench"
  echo "$want" > "$stamp"
fi
# The older naz releases the compatibility tests run (tests/unit/nazapp/test_nazapp_compat.py):
# one virtualenv each, with the same redis and prometheus-client as .venv.
for naz in 0.6.1 0.7.9; do
  venv=.venv-naz/$naz
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import naz, redis, prometheus_client" 2>/dev/null; then
    echo "bootstrap: creating $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "naz==$naz" "$(grep '^redis==' constraints.txt)" \
      "$(grep -E '^prometheus[-_]client==' constraints.txt)" 2>&1 | grep -v "^WARNING: Location" || true
  fi
done
echo "bootstrap: ready ($(.venv/bin/ansible --version | head -n1))"
