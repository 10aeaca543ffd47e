#!/usr/bin/env bash
# k8s-binaries.sh builds the Kubernetes control-plane binaries used by tests
# (kube-apiserver, kube-proxy) and etcd from the pinned module in tools/k8s,
# into a cache directory keyed by the Kubernetes version:
#
#   ${STRAIT_K8S_BIN:-${STRAIT_CACHE:-/var/cache/strait}/k8s-<version>}/
#     kube-apiserver kube-proxy etcd .stamp
#
# It is idempotent: if the directory holds a stamp matching the current
# tools/k8s/go.mod and go.sum, nothing is built. The stamp is written only
# after every binary was built and moved in place, so a half-finished build
# is never reused. Concurrent runs serialise on a lock file.
#
# The only thing printed on stdout is the directory; progress goes to stderr.
# A cold build takes about 4-5 minutes on 2 cores.
#
# Environment:
#   STRAIT_CACHE    cache root (default /var/cache/strait)
#   STRAIT_K8S_BIN  exact output directory (overrides the keyed default)
#   K8S_BINARIES_FORCE=1  rebuild even if the stamp matches
set -euo pipefail

# Everything runs inside main, read completely before it starts, so editing
# this file while it runs (a build takes minutes) cannot derail it.
main() {
	root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
	mod="${root}/tools/k8s"

	log() { echo "k8s-binaries: $*" >&2; }

	# modver prints the version a go.mod requires for a module path.
	modver() {
		awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "${mod}/go.mod"
	}

	k8s_version="$(modver k8s.io/kubernetes)"
	etcd_version="$(modver go.etcd.io/etcd/server/v3)"
	if [[ -z "${k8s_version}" || -z "${etcd_version}" ]]; then
		log "cannot read k8s.io/kubernetes or etcd version from ${mod}/go.mod"
		exit 1
	fi

	out="${STRAIT_K8S_BIN:-${STRAIT_CACHE:-/var/cache/strait}/k8s-${k8s_version}}"
	bins=(kube-apiserver kube-proxy etcd)

	# The stamp records what was built; any change to the pinned module set
	# (go.mod without comments, go.sum), the etcd main or the Go toolchain
	# invalidates it.
	stamp_want="$(
		echo "kubernetes ${k8s_version}"
		echo "etcd ${etcd_version}"
		echo "go $(cd "${mod}" && GOWORK=off go env GOVERSION)"
		{
			grep -v '^[[:space:]]*//' "${mod}/go.mod"
			cat "${mod}/go.sum" "${mod}/etcd/main.go"
		} | sha256sum | awk '{print "sum " $1}'
	)"

	up_to_date() {
		[[ -z "${K8S_BINARIES_FORCE:-}" ]] || return 1
		[[ -f "${out}/.stamp" ]] || return 1
		[[ "$(cat "${out}/.stamp")" == "${stamp_want}" ]] || return 1
		local b
		for b in "${bins[@]}"; do
			[[ -x "${out}/${b}" ]] || return 1
		done
	}

	if up_to_date; then
		echo "${out}"
		exit 0
	fi

	mkdir -p "${out}"
	exec 9>"${out}/.lock"
	flock 9
	# Another run may have finished the build while we waited for the lock.
	if up_to_date; then
		echo "${out}"
		exit 0
	fi
	K8S_BINARIES_FORCE=

	rm -f "${out}/.stamp"
	tmp="$(mktemp -d "${out}/.build.XXXXXX")"
	trap 'rm -rf "${tmp}"' EXIT

	# Version stamping as Kubernetes' own build does (hack/lib/version.sh), so
	# /version and the binaries' --version report the real release.
	major="${k8s_version#v}"; major="${major%%.*}"
	minor="${k8s_version#v*.}"; minor="${minor%%.*}"
	ldx=""
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldx+=" -X ${pkg}.gitVersion=${k8s_version}"
		ldx+=" -X ${pkg}.gitMajor=${major}"
		ldx+=" -X ${pkg}.gitMinor=${minor}"
		ldx+=" -X ${pkg}.gitTreeState=clean"
		ldx+=" -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
	done

	log "building kubernetes ${k8s_version} and etcd ${etcd_version} into ${out} (cold: ~4-5 min)"
	start=${SECONDS}
	(
		cd "${mod}"
		export GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly"
		go build -trimpath -ldflags="-s -w${ldx}" -o "${tmp}/" \
			k8s.io/kubernetes/cmd/kube-apiserver \
			k8s.io/kubernetes/cmd/kube-proxy \
			./etcd
	)
	for b in "${bins[@]}"; do
		[[ -x "${tmp}/${b}" ]] || { log "missing ${b} after build"; exit 1; }
		mv -f "${tmp}/${b}" "${out}/${b}"
	done
	printf '%s\n' "${stamp_want}" >"${out}/.stamp.tmp"
	mv -f "${out}/.stamp.tmp" "${out}/.stamp"
	log "built in $((SECONDS - start)) s"
	echo "${out}"
}

main "$@"
exit
