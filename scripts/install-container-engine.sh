#!/usr/bin/env bash
# Installs what the container tests need where it is missing: podman with runc (the engine),
# mmdebstrap (builds the offline test image from Debian packages) and docker-registry (a local
# registry the tests start). Writes a containers.conf for hosts whose cgroups are in hybrid mode
# (crun refuses them: "cgroups in hybrid mode not supported") and whose open-files limit is below
# podman's default for containers. Needs root and apt-get; elsewhere it only says what is missing.
set -euo pipefail

packages=(podman runc mmdebstrap docker-registry)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "container tests: missing ${missing[*]} (install them as root with apt-get);" \
            "tests that need them will be skipped" >&2
        exit 0
    fi
    echo "container tests: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

conf=/etc/containers/containers.conf
if [ "$(id -u)" -eq 0 ] && [ ! -e "$conf" ]; then
    mkdir -p "$(dirname "$conf")"
    cat >"$conf" <<'CONF'
# Written by airflow-batch-provider's scripts/install-container-engine.sh.
[containers]
# The host's open-files limit may be lower than podman's default for containers.
default_ulimits = []

[engine]
# crun fails with "cgroups in hybrid mode not supported"; runc handles them.
runtime = "runc"
CONF
    echo "container tests: wrote $conf (runtime runc, no default ulimits)"
fi
echo "container tests: $(podman --version 2>/dev/null || echo 'no podman')"
