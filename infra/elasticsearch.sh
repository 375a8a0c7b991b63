#!/usr/bin/env bash
# elasticsearch.sh — install and run a real single-node Elasticsearch without Docker.
#
#   elasticsearch.sh up       install once (cached), start in the background, wait for health, print URL
#   elasticsearch.sh down     stop the process recorded in the PID file (TERM, 30 s, then KILL)
#   elasticsearch.sh status   running/stopped and cluster health
#
# Uses Elastic's "integ-test-zip" distribution from Maven Central
# (org.elasticsearch.distribution.integ-test-zip:elasticsearch:<v>@zip): no bundled JDK, only the
# modules apm, transport-netty4, x-pack-core, x-pack-security (no reindex => no _delete_by_query,
# no painless scripts, no analysis-common, no mapper-extras, no ingest).
#
# Environment (all optional):
#   SOCIALSUGGEST_ES_VERSION  ES version (default below; the Python client's major must match it)
#   SOCIALSUGGEST_ES_PORT     HTTP port on 127.0.0.1 (default 9200)
#   SOCIALSUGGEST_ES_HEAP     heap for -Xms/-Xmx (default 512m)
#   SOCIALSUGGEST_CACHE       download/install cache (default $HOME/.cache/socialsuggest; when run as
#                             root: /var/cache/socialsuggest, because root's $HOME is mode 700 and the
#                             unprivileged ES user could not read the install there)
#   SOCIALSUGGEST_HOME        state root; ES data/logs live in $SOCIALSUGGEST_HOME/services/elasticsearch
#                             (default ./var)
#   SOCIALSUGGEST_ES_USER     unprivileged user ES runs as when this script runs as root
#                             (default socialsuggest-es; created if missing)
#   SOCIALSUGGEST_ES_SHA1     expected sha1 of the zip, for a version whose .sha1 Maven Central does
#                             not serve and that is not pinned below
#   ES_JAVA_HOME              JDK to use (must satisfy the version's minimum Java)
#   SOCIALSUGGEST_ES_TIMEOUT  seconds to wait for health (default 120)
set -Eeuo pipefail

ES_VERSION="${SOCIALSUGGEST_ES_VERSION:-9.5.2}"
ES_PORT="${SOCIALSUGGEST_ES_PORT:-9200}"
ES_HEAP="${SOCIALSUGGEST_ES_HEAP:-512m}"
ES_USER="${SOCIALSUGGEST_ES_USER:-socialsuggest-es}"
HEALTH_TIMEOUT="${SOCIALSUGGEST_ES_TIMEOUT:-120}"
MAVEN_BASE="${SOCIALSUGGEST_MAVEN_BASE:-https://repo1.maven.org/maven2}"
GROUP_PATH="org/elasticsearch/distribution/integ-test-zip/elasticsearch"
GAV="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"

# sha1 of zips verified on first download (Maven Central serves no .sha1 for the 9.x integ-test-zip;
# 9.5.2 was fetched twice, once by curl and once by mvn, with identical hashes and a clean `unzip -t`).
pinned_sha1() {
  case "$1" in
    9.5.2)   echo 039a49b852d4eb0db75f14afb6a29a907fbc2ba7 ;;
    8.19.21) echo 8861771bbfe2fab12ccc386bc8b4c5c6f9619865 ;; # from Maven Central's .sha1
    *)       echo "" ;;
  esac
}

if [[ $EUID -eq 0 ]]; then
  CACHE_DIR="${SOCIALSUGGEST_CACHE:-/var/cache/socialsuggest}"
else
  CACHE_DIR="${SOCIALSUGGEST_CACHE:-$HOME/.cache/socialsuggest}"
fi
STATE_ROOT="${SOCIALSUGGEST_HOME:-./var}"
mkdir -p "$STATE_ROOT"
STATE_ROOT="$(cd "$STATE_ROOT" && pwd -P)"
STATE_DIR="$STATE_ROOT/services/elasticsearch"
ES_HOME="$CACHE_DIR/elasticsearch-$ES_VERSION"
PID_FILE="$STATE_DIR/run/elasticsearch.pid"
URL="http://127.0.0.1:$ES_PORT"

log()  { printf '[elasticsearch] %s\n' "$*" >&2; }
die()  { printf '[elasticsearch] ERROR: %s\n' "$*" >&2; exit 1; }

es_major() { echo "${ES_VERSION%%.*}"; }

min_java() {
  case "$(es_major)" in
    7) echo 11 ;;
    8) echo 17 ;;
    *) echo 21 ;;
  esac
}

# Print the feature version (17, 21, 25...) of the JDK at $1, or nothing.
java_feature_version() {
  local home="$1" v=""
  [[ -x "$home/bin/java" ]] || return 0
  if [[ -r "$home/release" ]]; then
    v="$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release" | head -n1)"
  fi
  if [[ -z "$v" ]]; then
    v="$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
  fi
  [[ -n "$v" ]] || return 0
  v="${v#1.}"          # 1.8 -> 8
  echo "${v%%[.+-]*}"
}

# Pick a JDK whose version is >= the minimum for this ES major. Prefer ES_JAVA_HOME, then JAVA_HOME,
# then the newest JDK found in /usr/lib/jvm, /opt, /usr/local, then `java` on PATH.
pick_java_home() {
  local need; need="$(min_java)"
  if [[ -n "${ES_JAVA_HOME:-}" ]]; then
    local v; v="$(java_feature_version "$ES_JAVA_HOME")"
    [[ -n "$v" && "$v" -ge "$need" ]] && { echo "$ES_JAVA_HOME"; return; }
    die "ES_JAVA_HOME=$ES_JAVA_HOME is Java ${v:-?}, but Elasticsearch $ES_VERSION needs Java $need or newer. Unset ES_JAVA_HOME or point it at a JDK >= $need."
  fi
  local cands=() c best="" bestv=0 v
  [[ -n "${JAVA_HOME:-}" ]] && cands+=("$JAVA_HOME")
  for c in /usr/lib/jvm/* /opt/*jdk* /opt/*java* /opt/*/jdk* /usr/local/*jdk* /usr/local/*java*; do
    [[ -d "$c" && ! -L "$c" ]] && cands+=("$c")
  done
  if command -v java >/dev/null 2>&1; then
    c="$(readlink -f "$(command -v java)")"; cands+=("${c%/bin/java}")
  fi
  for c in "${cands[@]}"; do
    v="$(java_feature_version "$c")"
    if [[ -n "$v" && "$v" -ge "$need" && "$v" -gt "$bestv" ]]; then best="$c"; bestv="$v"; fi
  done
  [[ -n "$best" ]] && { echo "$best"; return; }
  die "no Java $need+ found (Elasticsearch $ES_VERSION needs Java >= $need; looked at \$JAVA_HOME, /usr/lib/jvm, /opt, /usr/local and 'java' on PATH). Install one: 'apt-get install openjdk-${need}-jdk-headless' where your distribution has it (Debian 13, Ubuntu 24.04; Debian 12 stops at 17), or a Temurin ${need}+ JDK (https://adoptium.net), then set ES_JAVA_HOME=/path/to/jdk."
}

sha1_of() { sha1sum "$1" | cut -d' ' -f1; }

# Download the zip into $1 (a directory), verify sha1, print the zip path.
download_zip() {
  local dir="$1" zip="$1/elasticsearch-$ES_VERSION.zip"
  local url="$MAVEN_BASE/$GROUP_PATH/$ES_VERSION/elasticsearch-$ES_VERSION.zip"
  local expected="" remote_sha1="" t0 t1 code=""
  t0=$(date +%s.%N)
  if command -v curl >/dev/null 2>&1; then
    log "downloading $url"
    code="$(curl -sS -L --retry 3 --connect-timeout 20 -o "$zip.part" -w '%{http_code}' "$url" 2>"$dir/curl.err" || true)"
    if [[ "$code" == "200" ]]; then
      mv "$zip.part" "$zip"
    else
      rm -f "$zip.part"
      log "curl failed (HTTP ${code:-none}: $(tr '\n' ' ' <"$dir/curl.err"))"
      if [[ "$code" == "404" ]]; then
        die "Elasticsearch $ES_VERSION integ-test-zip is not on Maven Central ($url -> 404). Pick a published version with SOCIALSUGGEST_ES_VERSION (see $MAVEN_BASE/$GROUP_PATH/maven-metadata.xml; note it does not list the 9.x releases, which exist: 9.0.0, 9.1.0, 9.5.2 ...)."
      fi
    fi
  fi
  if [[ ! -f "$zip" ]]; then
    command -v mvn >/dev/null 2>&1 || die "could not download $url with curl, and mvn is not installed (apt-get install maven). Check network access to Maven Central."
    log "falling back to: mvn dependency:get -Dartifact=$GAV"
    mvn -B -q dependency:get -Dartifact="$GAV" -Dtransitive=false -Dmaven.repo.local="$dir/m2" >"$dir/mvn.log" 2>&1 \
      || die "mvn dependency:get $GAV failed (log: $dir/mvn.log). Check network access to Maven Central and that version $ES_VERSION exists."
    mv "$dir/m2/$GROUP_PATH/$ES_VERSION/elasticsearch-$ES_VERSION.zip" "$zip"
    rm -rf "$dir/m2"
  fi
  t1=$(date +%s.%N)
  log "downloaded $(du -m "$zip" | cut -f1) MiB in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"

  # sha1: Maven Central's .sha1 first, then the pin above, then SOCIALSUGGEST_ES_SHA1.
  remote_sha1="$(curl -sSf -L --connect-timeout 20 "$url.sha1" 2>/dev/null | tr -dc '0-9a-f' | cut -c1-40 || true)"
  expected="${remote_sha1:-${SOCIALSUGGEST_ES_SHA1:-$(pinned_sha1 "$ES_VERSION")}}"
  if [[ -z "$remote_sha1" ]]; then
    log "Maven Central serves no $url.sha1; using the pinned/SOCIALSUGGEST_ES_SHA1 checksum"
  fi
  [[ -n "$expected" ]] || die "no sha1 to verify elasticsearch-$ES_VERSION.zip against (Maven Central has no .sha1 for it and it is not pinned in this script). Set SOCIALSUGGEST_ES_SHA1=<sha1> after verifying the file another way."
  local got; got="$(sha1_of "$zip")"
  [[ "$got" == "$expected" ]] || die "sha1 mismatch for elasticsearch-$ES_VERSION.zip: got $got, expected $expected. Retry; if it persists, the download is corrupt or tampered."
  log "sha1 ok ($got)"
  echo "$zip"
}

install_es() {
  [[ -x "$ES_HOME/bin/elasticsearch" && -f "$ES_HOME/.installed" ]] && return 0
  command -v unzip >/dev/null 2>&1 || die "unzip is missing (apt-get install unzip)."
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/.elasticsearch-$ES_VERSION.lock"
  flock 9   # concurrent `up`s install once
  if [[ -x "$ES_HOME/bin/elasticsearch" && -f "$ES_HOME/.installed" ]]; then exec 9>&-; return 0; fi
  local tmp; tmp="$(mktemp -d "$CACHE_DIR/.es-install.XXXXXX")"
  INSTALL_TMP="$tmp"; trap 'rm -rf "${INSTALL_TMP:-}"' EXIT   # no half-installs left behind on failure
  local t0 zip; t0=$(date +%s.%N)
  zip="$(download_zip "$tmp")"
  local t1; t1=$(date +%s.%N)
  unzip -q "$zip" -d "$tmp/x" || die "unzip of $zip failed (corrupt download?)"
  [[ -x "$tmp/x/elasticsearch-$ES_VERSION/bin/elasticsearch" ]] || die "unexpected zip layout in $zip"
  chmod -R a+rX "$tmp/x/elasticsearch-$ES_VERSION"
  rm -rf "$ES_HOME"
  mv "$tmp/x/elasticsearch-$ES_VERSION" "$ES_HOME"
  if [[ -n "${SOCIALSUGGEST_ES_KEEP_ZIP:-}" ]]; then mv "$zip" "$CACHE_DIR/"; fi
  rm -rf "$tmp"; INSTALL_TMP=""
  touch "$ES_HOME/.installed"
  exec 9>&-
  log "installed into $ES_HOME (unpack $(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s, total $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s, $(du -sm "$ES_HOME" | cut -f1) MiB)"
}

ensure_user() {
  [[ $EUID -eq 0 ]] || return 0
  if ! id -u "$ES_USER" >/dev/null 2>&1; then
    log "creating system user $ES_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ES_USER" \
      || die "could not create user $ES_USER (useradd failed)"
  fi
}

# Run a command as the ES user (or as ourselves when not root).
as_es() {
  if [[ $EUID -eq 0 ]]; then runuser -u "$ES_USER" -- "$@"; else "$@"; fi
}

prepare_state() {
  mkdir -p "$STATE_DIR"/{data,logs,run,tmp}
  # Own config copy: ES writes elasticsearch.keystore into its config dir, and the cache is read-only.
  if [[ ! -f "$STATE_DIR/config/.from-$ES_VERSION" ]]; then
    rm -rf "$STATE_DIR/config"
    cp -R "$ES_HOME/config" "$STATE_DIR/config"
    touch "$STATE_DIR/config/.from-$ES_VERSION"
  fi
  cat >"$STATE_DIR/config/elasticsearch.yml" <<EOF
# generated by elasticsearch.sh — edits are overwritten on 'up'
cluster.name: socialsuggest-dev
node.name: socialsuggest-es-1
path.data: $STATE_DIR/data
path.logs: $STATE_DIR/logs
network.host: 127.0.0.1
http.port: $ES_PORT
discovery.type: single-node
xpack.security.enabled: false
# CI/laptops: do not go read-only / refuse shards when the disk is >85-95% full
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
EOF
  if [[ $EUID -eq 0 ]]; then
    chown -R "$ES_USER:$ES_USER" "$STATE_DIR"
    # The unprivileged user must be able to reach the install and the state dir.
    as_es test -r "$ES_HOME/lib/elasticsearch-$ES_VERSION.jar" \
      || die "user $ES_USER cannot read $ES_HOME (a parent directory is not world-executable). Set SOCIALSUGGEST_CACHE to a directory outside root's home, e.g. /var/cache/socialsuggest."
    as_es test -w "$STATE_DIR/data" \
      || die "user $ES_USER cannot write $STATE_DIR/data (a parent directory is not world-executable). Set SOCIALSUGGEST_HOME to a directory it can reach."
  fi
}

# PID from the PID file if that process is alive and is Elasticsearch; empty otherwise.
live_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid; pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'org.elasticsearch'; then
    echo "$pid"
  fi
}

health() {  # prints green/yellow/red, or nothing
  curl -s --max-time 3 "$URL/_cluster/health" 2>/dev/null | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' || true
}

cmd_up() {
  local pid h
  pid="$(live_pid)"
  if [[ -n "$pid" ]]; then
    h="$(health)"
    if [[ "$h" == green || "$h" == yellow ]]; then echo "$URL"; return 0; fi
    log "already running (pid $pid), waiting for health"
  else
    rm -f "$PID_FILE"
    if curl -s --max-time 2 -o /dev/null "$URL" 2>/dev/null; then
      die "port $ES_PORT is already in use by another process (not the one in $PID_FILE). Stop it or set SOCIALSUGGEST_ES_PORT."
    fi
    command -v curl >/dev/null 2>&1 || die "curl is missing (apt-get install curl)."
    local java_home; java_home="$(pick_java_home)"   # fail fast, before downloading
    ensure_user
    mkdir -p "$CACHE_DIR"
    as_es test -x "$CACHE_DIR" \
      || die "user $ES_USER cannot reach $CACHE_DIR (a parent directory is not world-executable, e.g. root's home is mode 700). Set SOCIALSUGGEST_CACHE to a directory it can read, e.g. /var/cache/socialsuggest."
    install_es
    prepare_state
    log "starting Elasticsearch $ES_VERSION with Java $(java_feature_version "$java_home") ($java_home), heap $ES_HEAP, $URL"
    local t0; t0=$(date +%s.%N)
    # -d: the launcher forks the server JVM and exits once it has started; -p: the server writes its pid.
    # cwd = logs dir (the zip's jvm.options uses relative gc.log / hs_err paths).
    ( exec 8>&- 9>&-; cd "$STATE_DIR/logs" && as_es env -i \
        PATH=/usr/bin:/bin HOME="$STATE_DIR/tmp" LANG=C.UTF-8 \
        ES_JAVA_HOME="$java_home" ES_PATH_CONF="$STATE_DIR/config" ES_TMPDIR="$STATE_DIR/tmp" \
        ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP ${SOCIALSUGGEST_ES_JAVA_OPTS:-}" \
        "$ES_HOME/bin/elasticsearch" -d -p "$PID_FILE" \
        >"$STATE_DIR/logs/launcher.out" 2>&1 ) &
    local launcher=$!
    printf '[elasticsearch] waiting for %s/_cluster/health ' "$URL" >&2
    local deadline=$(( $(date +%s) + HEALTH_TIMEOUT ))
    while :; do
      h="$(health)"
      if [[ "$h" == green || "$h" == yellow ]]; then break; fi
      if ! kill -0 "$launcher" 2>/dev/null && [[ -z "$(live_pid)" ]]; then
        wait "$launcher" 2>/dev/null || true
        printf '\n' >&2
        log "Elasticsearch exited during startup. Last lines of $STATE_DIR/logs/launcher.out and the server log:"
        tail -n 30 "$STATE_DIR/logs/launcher.out" >&2 || true
        tail -n 30 "$STATE_DIR/logs/socialsuggest-dev.log" >&2 2>/dev/null || true
        exit 1
      fi
      if (( $(date +%s) >= deadline )); then
        printf '\n' >&2
        die "not healthy after ${HEALTH_TIMEOUT}s (health: ${h:-no answer}); see $STATE_DIR/logs/. It is left running: run '$0 down' to stop it."
      fi
      printf '.' >&2; sleep 1
    done
    printf ' %s in %s s\n' "$h" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" >&2
    wait "$launcher" 2>/dev/null || true
    echo "$URL"; return 0
  fi
  local deadline=$(( $(date +%s) + HEALTH_TIMEOUT ))
  until h="$(health)"; [[ "$h" == green || "$h" == yellow ]]; do
    (( $(date +%s) < deadline )) || die "not healthy after ${HEALTH_TIMEOUT}s (health: ${h:-no answer})"
    printf '.' >&2; sleep 1
  done
  echo "$URL"
}

cmd_down() {
  local pid; pid="$(live_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE"; log "not running"; return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && die "pid $pid survived SIGKILL for 10 s (zombie or uninterruptible I/O); PID file kept"
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid; pid="$(live_pid)"
  if [[ -n "$pid" ]]; then
    local h; h="$(health)"
    echo "running pid=$pid url=$URL health=${h:-unreachable} version=$ES_VERSION"
  else
    echo "stopped url=$URL version=$ES_VERSION"
    return 3
  fi
}

# Serialise up/down on the same state dir (fd 8 is closed for the ES process itself).
lock_state() {
  mkdir -p "$STATE_ROOT/services"
  exec 8>"$STATE_ROOT/services/.elasticsearch.lock"
  flock -w 300 8 || die "another elasticsearch.sh up/down holds $STATE_ROOT/services/.elasticsearch.lock"
}

case "${1:-}" in
  up)     lock_state; cmd_up ;;
  down)   lock_state; cmd_down ;;
  status) cmd_status ;;
  *)      echo "usage: $0 {up|down|status}" >&2; exit 2 ;;
esac
