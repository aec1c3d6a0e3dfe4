#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager), helm and actionlint from this
# Go module into a cache folder keyed by the module's content, so that a changed go.mod rebuilds and
# an unchanged one costs nothing. Prints the folder on stdout (usable as KUBEBUILDER_ASSETS).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

k8s_version="$(sed -nE 's#^(require)?[[:space:]]*k8s\.io/kubernetes (v[0-9.]+).*#\2#p' go.mod | head -1)"
[[ -n "$k8s_version" ]] || { echo "build.sh: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
key="$(cat go.mod go.sum build.sh $(find cmd -name '*.go' | sort) | sha256sum | cut -c1-16)"
cache_root="${KUBE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-vectordb-sync/kube-tools}"
out="$cache_root/$k8s_version-$key"

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kube-controller-manager" && -x "$out/helm" && -x "$out/actionlint" ]]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required to build the test control plane (none on PATH)" >&2; exit 1; }
tmp="$out.partial.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

major="${k8s_version#v}"; major="${major%%.*}"
minor="${k8s_version#v*.}"; minor="${minor%%.*}"
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$k8s_version \
 -X k8s.io/component-base/version.gitMajor=$major \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean"

start=$SECONDS
build() { # name package
  echo "build.sh: building $1 ($k8s_version)" >&2
  CGO_ENABLED=0 go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$tmp/$1" "$2"
}
build etcd ./cmd/etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build helm helm.sh/helm/v3/cmd/helm
build actionlint github.com/rhysd/actionlint/cmd/actionlint # lints .github/workflows (test/unit/workflow.test.ts)
echo "build.sh: built in $((SECONDS - start)) s" >&2

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
