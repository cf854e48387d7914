#!/usr/bin/env bash
# Installs podman (with runc) where no container engine is present, and writes a containers.conf that
# works on hosts whose cgroups are in hybrid mode (crun refuses them) and whose open-files limit is
# lower than podman's default for containers. Needs root for the install; a no-op when podman is there.
set -euo pipefail

if ! command -v podman >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "container engine: podman not found and cannot be installed here (needs root and apt-get);" \
            "the container tests will be skipped" >&2
        exit 0
    fi
    echo "container engine: installing podman and runc"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap >/dev/null
fi

if [ "$(id -u)" -eq 0 ] && command -v mmdebstrap >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
    :
elif command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
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
    echo "container engine: wrote $conf (runtime runc, no default ulimits)"
fi
podman --version
