#!/usr/bin/env bash
# Builds Pktgen-DPDK 23.06.1 (the newest release that builds against DPDK
# 22.11, Debian 12's) with Lua, patched by bench/pktgen/wgdp.patch, into
# target/pktgen (or $PKTGEN_DIR). Idempotent: a build of the same tarball
# and patch is kept.
#
#   bench/pktgen/build.sh            prints the binary's path on the last line
#
# The source: $PKTGEN_TARBALL, else ../shared/vendor/pktgen-dpdk-23.06.1.tar.gz
# beside the checkout when present (these machines cannot download it),
# otherwise the same release from upstream. The vendored tarball is the
# upstream tag less two sample captures (pcap/large.pcap,
# pcap/traffic_sample.pcap), so it is checked by its sha256 and the
# download by the tree they share: the sha256 of the sorted `sha256sum`
# lines of every other file.
# Needs meson, ninja-build, liblua5.3-dev, pkg-config and libdpdk-dev
# (scripts/install.sh --deps-only installs them). A step of the benchmark,
# not of wgdp's install.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

VERSION=23.06.1
SHA256=778aa8f832f2db8cd1b367dd0a94a3bc6e759579c1ec3d16c952e2e39e23ca2c
TREE_SHA256=8fee697016ce8818865ffbb32d41eaf15a12d973ad7b60b750a9e5c62d9852c1
TARBALL=pktgen-dpdk-$VERSION.tar.gz
URL=https://github.com/pktgen/Pktgen-DPDK/archive/refs/tags/pktgen-$VERSION.tar.gz
OUT=${PKTGEN_DIR:-$ROOT/target/pktgen}
PATCH=$ROOT/bench/pktgen/wgdp.patch

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

for t in meson ninja pkg-config cc patch sha256sum; do
    command -v "$t" >/dev/null || die "missing $t (scripts/install.sh --deps-only installs it)"
done
pkg-config --exists libdpdk || die "pkg-config finds no libdpdk (libdpdk-dev)"
pkg-config --exists lua5.3 || die "pkg-config finds no lua5.3 (liblua5.3-dev)"

mkdir -p "$OUT"
# The source tree less the two captures the vendored tarball leaves out.
tree_sha256() { # dir
    (cd "$1" && find . -type f ! -path ./pcap/large.pcap ! -path ./pcap/traffic_sample.pcap -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}
src=${PKTGEN_TARBALL:-$ROOT/../shared/vendor/$TARBALL}
vendored=1
if [[ ! -f $src ]]; then
    vendored=0
    src=$OUT/upstream-$TARBALL
    if [[ ! -f $src ]]; then
        command -v curl >/dev/null || die "no $ROOT/../shared/vendor/$TARBALL and no curl to fetch $URL"
        log "downloading $URL"
        curl -fsSL --retry 3 -o "$src.part" "$URL" || die "cannot download $URL"
        mv "$src.part" "$src"
    fi
fi
if ((vendored)); then
    echo "$SHA256  $src" | sha256sum -c --quiet - || die "$src: sha256 is not $SHA256"
fi

# The build is kept while the tarball and the patch are the same.
stamp=$(sha256sum "$src" | cut -c1-16)-$(sha256sum "$PATCH" | cut -c1-16)-$(pkg-config --modversion libdpdk)
bin=$OUT/src/build/app/pktgen
if [[ -x $bin && "$(cat "$OUT/stamp" 2>/dev/null)" == "$stamp" ]]; then
    log "pktgen $VERSION already built"
    echo "$bin"
    exit 0
fi

log "unpacking $src"
rm -rf "$OUT/src" "$OUT/stamp"
mkdir -p "$OUT/src"
tar -xzf "$src" -C "$OUT/src" --strip-components=1
got=$(tree_sha256 "$OUT/src")
[[ $got == "$TREE_SHA256" ]] || die "$src: the source tree's sha256 is $got, not $TREE_SHA256 (not Pktgen-DPDK $VERSION)"
log "applying bench/pktgen/wgdp.patch"
patch -d "$OUT/src" -p1 --quiet <"$PATCH"
log "meson setup (Lua on; DPDK's cflags passed on, which lib/lua does not look up itself)"
(cd "$OUT/src" && meson setup build -Denable_lua=true -Dc_args="$(pkg-config --cflags libdpdk)" >"$OUT/meson.log" 2>&1) ||
    die "meson setup failed: $(tail -20 "$OUT/meson.log")"
log "ninja"
ninja -C "$OUT/src/build" >"$OUT/ninja.log" 2>&1 || die "ninja failed: $(tail -30 "$OUT/ninja.log")"
[[ -x $bin ]] || die "no $bin after the build"
echo "$stamp" >"$OUT/stamp"
log "built $bin"
echo "$bin"
