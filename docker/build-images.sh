#!/usr/bin/env bash
# Builds the local images the compose files use when no registry is reachable:
#
#   demo-host/ratelimiter-node:local  FROM scratch, the statically linked ratelimiter-node
#   demo-host/fault-proxy:local       FROM scratch, the statically linked fault-proxy (crates/fault-proxy)
#   demo-host/redis:local             FROM scratch, Debian's redis-server + redis-cli and their libraries
#
# Nothing is pulled. Idempotent: an image whose staged context is unchanged is
# not rebuilt (its label demo-host.context carries the context's hash).
#
# Usage: docker/build-images.sh [ratelimiter-node] [fault-proxy] [redis]   (default: all three)
# Env:   STATIC_TARGET_DIR (default <repo>/target/static), CARGO (default cargo)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
stage_root="$repo/target/docker-context"
static_target="${STATIC_TARGET_DIR:-$repo/target/static}"
triple=x86_64-unknown-linux-gnu

say() { printf 'build-images: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v docker >/dev/null || die "the docker CLI is not installed (Debian package docker.io)"
docker info >/dev/null 2>&1 || die "no Docker engine answers: start dockerd, or check that this user may use /var/run/docker.sock (or \$DOCKER_HOST)"

# Copies a file to the same path under a root directory, following symlinks.
copy_into() {
    local root="$1" file="$2"
    mkdir -p "$root$(dirname "$file")"
    cp -L "$file" "$root$file"
}

# Copies a dynamically linked binary and every library ldd lists for it (the loader included).
copy_with_libs() {
    local root="$1" bin="$2"
    [ -x "$bin" ] || die "$bin not found: install the Debian packages redis-server and redis-tools"
    copy_into "$root" "$bin"
    local lib
    while read -r lib; do
        copy_into "$root" "$lib"
    done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

# Builds image $1 from Dockerfile $2 and staged context $3 unless an image with the same context hash exists.
build_if_changed() {
    local image="$1" dockerfile="$2" context="$3"
    cp "$dockerfile" "$context/Dockerfile"
    local hash
    hash="$(cd "$context" && find . -type f -o -type d | LC_ALL=C sort | while read -r p; do
        if [ -f "$p" ]; then sha256sum "$p"; else echo "dir $p"; fi
    done | sha256sum | cut -c1-32)"
    local have
    have="$(docker image inspect --format '{{index .Config.Labels "demo-host.context"}}' "$image" 2>/dev/null || true)"
    if [ "$have" = "$hash" ]; then
        say "$image is up to date"
        return
    fi
    say "building $image"
    local start=$SECONDS
    # The legacy builder (this engine has no BuildKit plugin) warns on every run: show its output only on failure.
    local log
    log="$(mktemp)"
    if ! DOCKER_BUILDKIT=0 docker build --pull=false --label "demo-host.context=$hash" -t "$image" "$context" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "docker build of $image failed"
    fi
    rm -f "$log"
    say "built $image in $((SECONDS - start)) s"
}

# Compiles binary $2 of package $1 statically and builds image $3 from Dockerfile $4 around it.
build_static() {
    local package="$1" bin_name="$2" image="$3" dockerfile="$4"
    local start=$SECONDS
    say "compiling $bin_name statically (target dir $static_target)"
    # No debug info (the image would not carry it) and incremental: a rebuild after an
    # edit recompiles only its own crate. Static glibc resolves compose service names
    # (such as `redis`) through Docker's DNS (verified; see docs/docker.md).
    RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR="$static_target" \
        CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_INCREMENTAL=true \
        "${CARGO:-cargo}" build --quiet --release --locked --target "$triple" \
        --manifest-path "$repo/Cargo.toml" -p "$package" --bin "$bin_name"
    local bin="$static_target/$triple/release/$bin_name"
    if ldd "$bin" 2>&1 | grep -q '=>'; then
        die "$bin is dynamically linked; the FROM scratch image needs a static binary"
    fi
    say "$bin_name compiled in $((SECONDS - start)) s"
    local ctx="$stage_root/$bin_name"
    rm -rf "$ctx"
    mkdir -p "$ctx/rootfs/usr/local/bin"
    # Symbols are not needed in the image either.
    if command -v strip >/dev/null; then
        strip --strip-debug -o "$ctx/rootfs/usr/local/bin/$bin_name" "$bin"
    else
        cp "$bin" "$ctx/rootfs/usr/local/bin/$bin_name"
    fi
    build_if_changed "$image" "$dockerfile" "$ctx"
}

build_node() {
    build_static ratelimiter-node ratelimiter-node demo-host/ratelimiter-node:local "$here/ratelimiter-node.Dockerfile"
}

build_fault_proxy() {
    build_static fault-proxy fault-proxy demo-host/fault-proxy:local "$here/fault-proxy.Dockerfile"
}

build_redis() {
    local ctx="$stage_root/redis"
    rm -rf "$ctx"
    mkdir -p "$ctx/rootfs/etc" "$ctx/data"
    copy_with_libs "$ctx/rootfs" /usr/bin/redis-server
    copy_with_libs "$ctx/rootfs" /usr/bin/redis-cli
    printf 'root:x:0:0:root:/root:/sbin/nologin\nredis:x:999:999:redis:/data:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
    printf 'root:x:0:\nredis:x:999:\n' >"$ctx/rootfs/etc/group"
    build_if_changed demo-host/redis:local "$here/redis.Dockerfile" "$ctx"
}

wanted=("$@")
# The default is what the compose files use: the rate limiter's nodes reach Redis through the proxy.
[ ${#wanted[@]} -gt 0 ] || wanted=(ratelimiter-node fault-proxy redis)
for w in "${wanted[@]}"; do
    case "$w" in
        ratelimiter-node) build_node ;;
        fault-proxy) build_fault_proxy ;;
        redis) build_redis ;;
        *) die "unknown image \`$w\`: use ratelimiter-node, fault-proxy and/or redis" ;;
    esac
done
