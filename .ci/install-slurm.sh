#!/usr/bin/env bash
# Install the Debian packages that tests/slurm_cluster.py needs to start a single-node Slurm
# cluster (controller, compute daemon, accounting daemon, MariaDB for accounting, munge for auth).
#
# Usage (as root, Debian bookworm or later):  bash .ci/install-slurm.sh
# Elsewhere (no root, no apt-get) it installs nothing and exits 0: the Slurm tests skip.
#
# No daemon is started here and none is enabled: the test fixture starts its own processes with
# all state in a temporary directory and stops them by PID. Debian's postinst scripts try to start
# services; policy-rc.d forbids that for the duration of the install (there is no systemd in CI).
set -euo pipefail

packages=(
    slurm-wlm        # slurmctld, slurmd and the client commands (sbatch, srun, squeue, sacct, scancel)
    slurmdbd         # accounting daemon: sacct works, as on real clusters (tests, plugin fallback)
    munge            # authentication between the Slurm daemons and the client commands
    mariadb-server   # storage behind slurmdbd
    mariadb-client   # `mariadb`, which creates the accounting database and its user
)

# Already installed (e.g. a cached CI image): nothing to do.
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-slurm.sh: all packages already installed"
    exit 0
fi
# Without root or apt there is nothing to install with; the Slurm tests then skip and say why.
# This is not an error: `make test` must work on any machine.
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get > /dev/null; then
    echo "install-slurm.sh: not root or no apt-get; not installing ${missing[*]}" \
        "(tests/test_slurm.py will be skipped)" >&2
    exit 0
fi

policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

for cmd in slurmctld slurmd slurmdbd munged mariadbd mariadb-install-db sbatch sacct; do
    command -v "$cmd" > /dev/null || { echo "install-slurm.sh: $cmd not found after install" >&2; exit 1; }
done
echo "install-slurm.sh: $(slurmctld -V), $(munged --version 2>&1 | awk '{print $1}'), $(mariadbd --version | awk '{print $3}')"
