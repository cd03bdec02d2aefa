#!/usr/bin/env bash
# Installs the real store servers of the local stack into .stack/ (git-ignored), idempotently:
# FerretDB 1.24.2 (SQLite), milvus-lite 3.2.2, the real Milvus 2.3 engine, versitygw 1.7.0 and
# Debian's redis-server.
# A second run with the cache warm does nothing but check.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${LAYRA_STACK_CACHE:-$root/.stack}"
mkdir -p "$cache/bin"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "stack: installing redis-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server >/dev/null
  # The package starts a system-wide instance; the stack runs its own on a free port.
  (service redis-server stop || true) >/dev/null 2>&1
fi

ferret_src_hash="$(cat "$here/ferretdb/main.go" "$here/ferretdb/go.mod" "$here/ferretdb/go.sum" | sha256sum | cut -c1-16)"
if [ ! -x "$cache/bin/ferretdb-$ferret_src_hash" ]; then
  echo "stack: building FerretDB 1.24.2 (SQLite backend)"
  (cd "$here/ferretdb" && CGO_ENABLED=0 go build -o "$cache/bin/ferretdb-$ferret_src_hash" .)
fi
ln -sf "ferretdb-$ferret_src_hash" "$cache/bin/ferretdb"

if [ ! -x "$cache/bin/versitygw" ]; then
  echo "stack: building versitygw v1.7.0"
  GOBIN="$cache/bin" go install github.com/versity/versitygw/cmd/versitygw@v1.7.0
fi

# milvus-lite's server mode imports pymilvus's generated gRPC stubs.
milvus_pins="milvus-lite==3.2.2 pymilvus==3.0.2"
if [ "$(cat "$cache/venv/.installed" 2>/dev/null)" != "$milvus_pins" ]; then
  echo "stack: installing $milvus_pins into a virtualenv"
  python3 -m venv "$cache/venv"
  # shellcheck disable=SC2086
  "$cache/venv/bin/pip" install -q --disable-pip-version-check $milvus_pins
  echo "$milvus_pins" > "$cache/venv/.installed"
fi
# The real Milvus engine (2.3, embedded by PyPI's `milvus` package) as an optional second Milvus,
# so the Milvus store and search tests can run against the engine as well as milvus-lite.
real_milvus_pins="milvus==2.3.5 setuptools<81"
if [ "$(cat "$cache/milvus-venv/.installed" 2>/dev/null)" != "$real_milvus_pins" ]; then
  echo "stack: installing $real_milvus_pins into a virtualenv"
  python3 -m venv "$cache/milvus-venv"
  # shellcheck disable=SC2086
  "$cache/milvus-venv/bin/pip" install -q --disable-pip-version-check $real_milvus_pins
  echo "$real_milvus_pins" > "$cache/milvus-venv/.installed"
fi
echo "stack: servers installed in $cache"
