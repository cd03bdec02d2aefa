#!/usr/bin/env bash
# Installs the real store servers of the local stack into .stack/ (git-ignored), idempotently:
# FerretDB 1.24.2 (SQLite), milvus-lite 3.2.2, versitygw 1.7.0, Apache Kafka 3.8.0 (jars from Maven
# Central), and from Debian's packages redis-server, poppler-utils (the worker's PDF renderer) and
# tesseract-ocr (the local model server reads pages with it).
#
#   install.sh start   what `npm start` needs
#   install.sh         all of it: also what only the tests use (the real Milvus 2.3 engine, LAYRA's
#                      pydantic models, Chromium)
#   install.sh capture also LAYRA's own backend packages, for scripts/capture-layra-fixtures.ts
#
# The steps that are missing run side by side (a fresh machine spends most of its time in two Go
# builds), each logging to .stack/install-logs/; a line every 20 s says what is still running.
# With the cache warm it only checks, in well under a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${LAYRA_STACK_CACHE:-$root/.stack}"
purpose="${1:-test}"
logs="$cache/install-logs"
mkdir -p "$cache/bin" "$logs"

ferret_src_hash="$(cat "$here/ferretdb/main.go" "$here/ferretdb/go.mod" "$here/ferretdb/go.sum" | sha256sum | cut -c1-16)"
kafka_pom_hash="$(sha256sum "$here/kafka/pom.xml" | cut -c1-16)"
# milvus-lite's server mode imports pymilvus's generated gRPC stubs.
milvus_pins="milvus-lite==3.2.2 pymilvus==3.0.2"
real_milvus_pins="milvus==2.3.5 setuptools<81"
# LAYRA's pydantic (its requirements' pin), so the workflow tests check what the gateway queues with
# LAYRA's own `Workflow` model.
layra_model_pins="pydantic==2.10.6"
# The packages LAYRA's backend modules import on the paths scripts/capture-layra-fixtures.py runs, at the
# versions its requirements pin (httpx and python-multipart, which it takes unpinned through fastapi[all], at versions of that time).
layra_capture_pins="pydantic==2.10.6 pydantic_settings==2.8.1 motor==3.7.0 redis==6.2.0 aiokafka==0.12.0 \
fastapi==0.115.11 aioboto3==13.3.0 python-jose[cryptography]==3.4.0 passlib==1.7.4 sqlalchemy[asyncio]==2.0.39 \
pdf2image==1.17.0 pillow==11.1.0 httpx==0.28.1 python-multipart==0.0.20"

apt_packages=()
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
command -v pdftoppm >/dev/null 2>&1 || apt_packages+=(poppler-utils)
command -v tesseract >/dev/null 2>&1 || apt_packages+=(tesseract-ocr)
# Headless Chromium for the browser tests (playwright-core drives it; no npm package downloads a browser).
if [ "$purpose" != start ] && ! command -v chromium >/dev/null 2>&1; then apt_packages+=(chromium); fi

install_apt_packages() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${apt_packages[@]}"
  # redis-server's package starts a system-wide instance; the stack runs its own on a free port.
  (service redis-server stop || true) >/dev/null 2>&1
}

build_ferretdb() {
  (cd "$here/ferretdb" && CGO_ENABLED=0 go build -o "$cache/bin/ferretdb-$ferret_src_hash" .)
}

build_versitygw() {
  GOBIN="$cache/bin" go install github.com/versity/versitygw/cmd/versitygw@v1.7.0
}

# venv_install <folder> <pins>: a virtualenv holding exactly these pins.
venv_install() {
  python3 -m venv "$cache/$1"
  # shellcheck disable=SC2086
  "$cache/$1/bin/pip" install -q --disable-pip-version-check $2
  echo "$2" >"$cache/$1/.installed"
}

# Kafka 3.8.0 (LAYRA's broker version) runs in KRaft mode straight from its Maven jars: no tarball,
# no ZooKeeper. The pom lists only the dependency; Maven copies it and its runtime jars.
install_kafka() {
  rm -rf "$cache/kafka/lib"
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$cache/kafka/lib"
  echo "$kafka_pom_hash" >"$cache/kafka/.installed"
}

names=()
pids=()
logs_of=()
# step <log name> <what it does> <rough time on a 2-core machine with empty caches> <function> [args]
step() {
  local log=$1 name=$2 estimate=$3
  shift 3
  echo "stack: $name (about $estimate, once)"
  "$@" >"$logs/$log.log" 2>&1 &
  names+=("$name")
  logs_of+=("$logs/$log.log")
  pids+=($!)
}

[ ${#apt_packages[@]} -eq 0 ] || step apt "apt: ${apt_packages[*]}" "1 min" install_apt_packages
[ -x "$cache/bin/ferretdb-$ferret_src_hash" ] || step ferretdb "building FerretDB 1.24.2" "4.5 min" build_ferretdb
[ -x "$cache/bin/versitygw" ] || step versitygw "building versitygw 1.7.0" "4.5 min" build_versitygw
[ "$(cat "$cache/venv/.installed" 2>/dev/null)" = "$milvus_pins" ] ||
  step milvus-lite "pip: $milvus_pins" "2.5 min" venv_install venv "$milvus_pins"
[ "$(cat "$cache/kafka/.installed" 2>/dev/null)" = "$kafka_pom_hash" ] ||
  step kafka "maven: Kafka 3.8.0 jars" "1 min" install_kafka
# The real Milvus engine (2.3, embedded by PyPI's `milvus` package) is a second Milvus beside
# milvus-lite, for the Milvus store and search tests.
if [ "$purpose" != start ] && [ "$(cat "$cache/milvus-venv/.installed" 2>/dev/null)" != "$real_milvus_pins" ]; then
  step milvus-engine "pip: $real_milvus_pins (tests only)" "2 min" venv_install milvus-venv "$real_milvus_pins"
fi
if [ "$purpose" != start ] && [ "$(cat "$cache/layra-venv/.installed" 2>/dev/null)" != "$layra_model_pins" ]; then
  step layra-model "pip: $layra_model_pins (tests only)" "20 s" venv_install layra-venv "$layra_model_pins"
fi

if [ "$purpose" = capture ] && [ "$(cat "$cache/layra-capture-venv/.installed" 2>/dev/null)" != "$layra_capture_pins" ]; then
  step layra-capture "pip: LAYRA's backend packages (fixture capture only)" "1 min" venv_install layra-capture-venv "$layra_capture_pins"
fi

started=$SECONDS
failed=0
while [ ${#pids[@]} -gt 0 ]; do
  running_names=()
  running_logs=()
  running_pids=()
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      running_names+=("${names[$i]}")
      running_logs+=("${logs_of[$i]}")
      running_pids+=("${pids[$i]}")
    elif wait "${pids[$i]}"; then
      echo "stack: done: ${names[$i]} ($((SECONDS - started)) s)"
    else
      echo "stack: FAILED: ${names[$i]}; the end of ${logs_of[$i]}:" >&2
      tail -n 20 "${logs_of[$i]}" >&2
      failed=1
    fi
  done
  names=("${running_names[@]+"${running_names[@]}"}")
  logs_of=("${running_logs[@]+"${running_logs[@]}"}")
  pids=("${running_pids[@]+"${running_pids[@]}"}")
  [ ${#pids[@]} -gt 0 ] || break
  for _ in $(seq 20); do
    sleep 1
    any_done=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || any_done=1; done
    [ $any_done -eq 0 ] || break
  done
  if [ $any_done -eq 0 ]; then
    running=$(printf '%s; ' "${names[@]}")
    echo "stack: still working ($((SECONDS - started)) s): ${running%; }"
  fi
done
[ $failed -eq 0 ] || exit 1
ln -sf "ferretdb-$ferret_src_hash" "$cache/bin/ferretdb"
