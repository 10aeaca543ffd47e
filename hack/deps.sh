#!/usr/bin/env bash
# Installs the system packages Strait's build, tests and demo need, when
# they are missing. Idempotent; needs root on Debian/Ubuntu (apt-get).
#
# Other distributions: install clang/llvm (14+), libbpf headers, bpftool,
# kernel UAPI headers, iproute2, ethtool, iperf3, wrk, nftables, iptables,
# FRR and BIRD 2 with your package manager; Go 1.26 must be on PATH.
set -euo pipefail

PKGS=(clang llvm libbpf-dev bpftool linux-libc-dev iproute2 ethtool iperf3
      wrk nftables iptables frr bird2 procps kmod)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "hack/deps.sh: missing packages ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "hack/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends: recommends pull in daemons (an NTP server among
# them) that change the machine.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
