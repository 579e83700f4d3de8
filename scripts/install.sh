#!/usr/bin/env bash
# Install everything neutrino needs on Debian 12, as root: the Debian packages
# (networking tools, PostgreSQL for the tests) and the Python venv in .venv.
#
# Idempotent and fast when nothing changed: apt is skipped when every package
# is already installed, pip is skipped while .venv's stamp matches
# pyproject.toml.  No system service is started or enabled.
#
#   scripts/install.sh            # packages + venv
#   NEUTRINO_SKIP_APT=1 scripts/install.sh   # venv only (no root needed)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${NEUTRINO_VENV:-$ROOT/.venv}
STAMP=$VENV/.neutrino-install-stamp

# Packages that must be there.
REQUIRED=(
    python3 python3-venv python3-dev gcc make
    openvswitch-switch dnsmasq-base dnsmasq-utils haproxy
    iptables nftables iproute2 conntrack tcpdump curl procps ethtool iputils-ping iputils-arping
    postgresql
    openssl             # tests and docs/tls.md inspect our certificates with openssl x509/verify/s_client
    busybox udhcpc      # the instances' DHCP client (guests run udhcpc, tests probe with it)
)
# Installed when the archive has them, silently skipped otherwise.
OPTIONAL=()

log() { printf 'install: %s\n' "$*" >&2; }

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

has_candidate() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
    [ -n "$cand" ] && [ "$cand" != "(none)" ]
}

install_packages() {
    if [ -n "${NEUTRINO_SKIP_APT:-}" ]; then
        log "NEUTRINO_SKIP_APT set: not touching Debian packages"
        return
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        log "dpkg-query not found: this is not a Debian system; install the packages by hand: ${REQUIRED[*]}"
        return
    fi
    local missing=() pkg
    for pkg in "${REQUIRED[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    local optional_missing=()
    for pkg in "${OPTIONAL[@]}"; do
        is_installed "$pkg" || optional_missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ] && [ ${#optional_missing[@]} -eq 0 ]; then
        log "Debian packages: all installed"
        return
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        # Only optional packages are missing: install those the (current)
        # package lists know; do not refresh the lists for them.
        for pkg in "${optional_missing[@]}"; do
            has_candidate "$pkg" && missing+=("$pkg")
        done
        if [ ${#missing[@]} -eq 0 ]; then
            log "Debian packages: all installed (not available: ${optional_missing[*]})"
            return
        fi
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages: ${missing[*]} ${optional_missing[*]}"
        log "run this script as root (or set NEUTRINO_SKIP_APT=1 to skip)"
        exit 1
    fi

    export DEBIAN_FRONTEND=noninteractive
    log "apt-get update"
    apt-get update -qq
    # Optional packages, now that the lists are fresh.
    for pkg in "${optional_missing[@]}"; do
        case " ${missing[*]} " in *" $pkg "*) continue ;; esac
        if has_candidate "$pkg"; then missing+=("$pkg"); else log "not available, skipped: $pkg"; fi
    done

    # Keep maintainer scripts from starting services (there may be no init
    # system at all); remove the policy again only if it was ours.
    local policy=/usr/sbin/policy-rc.d own_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# neutrino install.sh: do not start services\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    log "apt-get install ${missing[*]}"
    local rc=0
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" || rc=$?
    if [ -n "$own_policy" ]; then rm -f "$policy"; trap - EXIT; fi
    if [ $rc -ne 0 ]; then
        log "apt-get install failed ($rc)"
        exit $rc
    fi
}

# The first Python >= 3.11 with a working venv module: python3 on PATH, then
# versioned names, then the system one.
pick_python() {
    local cand
    for cand in "${NEUTRINO_PYTHON:-}" python3 python3.13 python3.12 python3.11 /usr/bin/python3; do
        [ -n "$cand" ] || continue
        command -v "$cand" >/dev/null 2>&1 || continue
        if "$cand" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

venv_ok() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

stamp_value() {
    {
        sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1
        "$VENV/bin/python" -c 'import sys; print(sys.version)'
        echo "$ROOT"
    } | sha256sum | cut -d' ' -f1
}

install_venv() {
    if ! venv_ok; then
        local py
        if ! py=$(pick_python); then
            log "no Python >= 3.11 with venv and ensurepip found (install python3-venv)"
            exit 1
        fi
        log "creating $VENV with $py ($("$py" -V 2>&1))"
        rm -rf "$VENV"
        "$py" -m venv "$VENV"
    fi
    local want
    want=$(stamp_value)
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/neutrino" ]; then
        log "venv: up to date ($VENV)"
        return
    fi
    log "pip install -e '.[test]' into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test]"
    echo "$want" > "$STAMP"
}

start=$(date +%s.%N)
install_packages
install_venv
log "done in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s"
