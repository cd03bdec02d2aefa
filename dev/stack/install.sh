#!/usr/bin/env bash
# Installs the real store servers of the local stack into .stack/ (git-ignored), idempotently:
# FerretDB 1.24.2 (SQLite), milvus-lite 3.2.2, versitygw 1.7.0, Debian's redis-server, Apache Kafka
# 3.8.0 (jars from Maven Central), Debian's poppler-utils (pdftoppm, the worker's PDF renderer),
# Debian's tesseract-ocr (the local model server's page reader) and the real Milvus 2.3 engine.
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
# Kafka 3.8.0 (LAYRA's broker version) runs in KRaft mode straight from its Maven jars: no tarball,
# no ZooKeeper. The pom lists only the dependency; Maven copies it and its runtime jars.
kafka_pom_hash="$(sha256sum "$here/kafka/pom.xml" | cut -c1-16)"
if [ "$(cat "$cache/kafka/.installed" 2>/dev/null)" != "$kafka_pom_hash" ]; then
  echo "stack: installing Apache Kafka 3.8.0 jars with Maven"
  rm -rf "$cache/kafka/lib"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$cache/kafka/lib"
  echo "$kafka_pom_hash" > "$cache/kafka/.installed"
fi

if ! command -v pdftoppm >/dev/null 2>&1; then
  echo "stack: installing poppler-utils from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 poppler-utils >/dev/null
fi

# tesseract reads the rendered pages for the local model server's /embed_image (dev/stack/model-server.ts).
if ! command -v tesseract >/dev/null 2>&1; then
  echo "stack: installing tesseract-ocr from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 tesseract-ocr >/dev/null
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

# Headless Chromium for the browser tests (test/browser.test.ts drives it with playwright-core;
# no browser is ever downloaded by an npm package).
if ! command -v chromium >/dev/null 2>&1; then
  echo "stack: installing chromium from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium >/dev/null
fi
