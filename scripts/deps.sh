#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and benchmark
# sendtrace: apt packages, a Go toolchain new enough for go.mod (from the Go
# module proxy, when none is installed), and the Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."
# The PATH this was run with (sudo's secure_path, or the user's): whether
# `go` works there is what the README's commands need.
run_path=$PATH

# The arm64 guests of the kernel matrix boot Debian's arm64 kernels and run
# arm64 busybox, dash, ip and nft: apt must know the architecture to
# download them (vmtest/run.sh fetches them into its cache).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	dpkg --add-architecture arm64
fi

packages=(
	clang-19 llvm-19            # make generate (pinned compiler)
	bpftool                     # make vmlinux
	iproute2 nftables           # network-namespace fault lab
	qemu-system-x86 qemu-system-arm busybox-static cpio xz-utils zstd   # kernel matrix in VMs
	strace bpftrace             # benchmark peers
	libcap2-bin                 # setcap: the least-privilege test
	runc prometheus systemd     # fleet tests: a real container, a real scraper, systemd-analyze verify
	nodejs                      # a Node.js keep-alive client in the diagnosis tests
	chromium                    # headless browser that opens the report --html pages in tests
	iperf3                      # a real bulk sender for the retransmit scenario
	python3                     # fleet tests: short-lived processes that name their own cgroup
	jq gzip git make ca-certificates curl unzip
)
missing=()
for p in "${packages[@]}"; do
	[[ $p == \#* ]] && continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# apt-get update when packages are missing, or when no arm64 package list
# has been fetched since the architecture was added.
if ((${#missing[@]})) || ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
fi
if ((${#missing[@]})); then
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
have_go() {
	command -v go >/dev/null 2>&1 || return 1
	local v
	v=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
	[[ "$(printf '%s\n%s\n' "$want" "$v" | sort -V | head -1)" == "$want" ]]
}
if ! have_go && [[ -x /usr/local/go/bin/go ]]; then
	export PATH=/usr/local/go/bin:$PATH
fi
if ! have_go; then
	# The Go toolchain is itself a module on the Go module proxy.
	proxy=${GOPROXY:-https://proxy.golang.org}
	proxy=${proxy%%,*}
	zip=$(mktemp --suffix .zip)
	curl -fsSL -o "$zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$want.linux-amd64.zip"
	rm -rf /usr/local/go-toolchain && mkdir -p /usr/local/go-toolchain
	unzip -q "$zip" -d /usr/local/go-toolchain && rm -f "$zip"
	ln -sfn "/usr/local/go-toolchain/golang.org/toolchain@v0.0.1-go$want.linux-amd64" /usr/local/go
	export PATH=/usr/local/go/bin:$PATH
	echo "installed Go $want in /usr/local/go"
fi
# Go in /usr/local/go is not on anyone's PATH: when the PATH this was run
# with has no go, link go and gofmt into /usr/local/bin, which every
# login shell and sudo's secure_path search, so that `go build` works as
# the README says.
if [[ $(command -v go) == /usr/local/go/bin/go ]] && ! PATH=$run_path command -v go >/dev/null 2>&1; then
	ln -sfn /usr/local/go/bin/go /usr/local/bin/go
	ln -sfn /usr/local/go/bin/gofmt /usr/local/bin/gofmt
	echo "linked go and gofmt into /usr/local/bin: go is on PATH now ($(/usr/local/bin/go version))"
elif ! PATH=$run_path have_go; then
	echo "note: the go on PATH ($(PATH=$run_path command -v go)) is older than go $want; this script uses /usr/local/go/bin/go: put /usr/local/go/bin first on PATH"
fi
go mod download
