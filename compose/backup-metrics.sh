#!/usr/bin/env bash
# Back up the B25 observability state: a Prometheus TSDB snapshot and the Grafana dashboards.
#
# Corrected from the plan (section 7.2):
#   - `promtool tsdb snapshot` does not exist: snapshots are taken through Prometheus' admin API
#     (POST /api/v1/admin/tsdb/snapshot), enabled by --web.enable-admin-api in docker-compose.yml;
#   - the snapshot lands in the prometheus-data volume (/prometheus/snapshots/<name>), not in a
#     host path: it is copied out with `docker compose cp`;
#   - Grafana's /api/dashboards/db/<slug> (the `uri` field) is gone: dashboards are fetched by uid,
#     one file each (concatenated JSON documents are not valid JSON);
#   - old backups are pruned with `find -mindepth 1 -maxdepth 1`, never from a path that could be
#     empty or `/`; snapshots inside Prometheus are removed once copied out.
#
# Usage: compose/backup-metrics.sh [BACKUP_DIR]
# Env:   BACKUP_DIR (default ./backups), KEEP_DAYS (default 7), PROMETHEUS_URL, GRAFANA_URL,
#        GRAFANA_ADMIN_PASSWORD (read from compose/.env when unset), S3_URI (optional: `aws s3 sync` target)
# Needs: docker compose, curl, jq (and the aws CLI when S3_URI is set).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
compose=(docker compose --project-directory "$script_dir" -f "$script_dir/docker-compose.yml")

backup_root="${1:-${BACKUP_DIR:-$script_dir/backups}}"
keep_days="${KEEP_DAYS:-7}"
prometheus_url="${PROMETHEUS_URL:-http://127.0.0.1:9090}"
grafana_url="${GRAFANA_URL:-http://127.0.0.1:3000}"

if [[ -z "${GRAFANA_ADMIN_PASSWORD:-}" && -f "$script_dir/.env" ]]; then
  GRAFANA_ADMIN_PASSWORD="$(sed -n 's/^GRAFANA_ADMIN_PASSWORD=//p' "$script_dir/.env" | tail -n 1)"
fi
: "${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD (or put it in compose/.env)}"

for tool in curl jq docker; do
  command -v "$tool" >/dev/null || { echo "backup-metrics: $tool is required" >&2; exit 1; }
done
[[ "$keep_days" =~ ^[0-9]+$ ]] || { echo "backup-metrics: KEEP_DAYS must be a number" >&2; exit 1; }

stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
target="$backup_root/$stamp"
mkdir -p "$target/prometheus" "$target/grafana"

# 1. Prometheus snapshot (hard links inside the TSDB volume: cheap, consistent).
snapshot="$(curl -fsS -X POST "$prometheus_url/api/v1/admin/tsdb/snapshot" | jq -er '.data.name')"
echo "prometheus snapshot: $snapshot"
"${compose[@]}" cp "prometheus:/prometheus/snapshots/$snapshot" "$target/prometheus/"
# The snapshot is now outside the container; free the hard links inside it.
"${compose[@]}" exec -T prometheus rm -rf -- "/prometheus/snapshots/$snapshot"

# 2. Grafana dashboards, one JSON file per dashboard uid (the provisioned ones are also in git;
#    this catches dashboards created in the UI).
grafana_get() { curl -fsS -u "admin:$GRAFANA_ADMIN_PASSWORD" "$grafana_url$1"; }
grafana_get "/api/search?type=dash-db&limit=5000" | jq -r '.[].uid' | while IFS= read -r uid; do
  [[ "$uid" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "skipping odd dashboard uid: $uid" >&2; continue; }
  grafana_get "/api/dashboards/uid/$uid" | jq '.dashboard' > "$target/grafana/$uid.json"
done
echo "grafana dashboards: $(find "$target/grafana" -name '*.json' | wc -l)"

# 3. Optional off-site copy.
if [[ -n "${S3_URI:-}" ]]; then
  aws s3 sync --only-show-errors "$target" "${S3_URI%/}/$stamp/"
fi

# 4. Keep the last KEEP_DAYS days of local backups (only the timestamped folders this script made).
find "$backup_root" -mindepth 1 -maxdepth 1 -type d -name '20*T*Z' -mtime +"$keep_days" -print -exec rm -rf -- {} +
echo "backup written to $target"
