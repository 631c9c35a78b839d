#!/usr/bin/env bash
# The fault suite at CI scale: a small version of every one-process scenario (kill -9 storms on both transports,
# RabbitMQ restarts, disk full / read-only, Slack and PagerDuty faults) and two replica scenarios (3 replicas on
# PostgreSQL and RabbitMQ: kill -9 of replicas; every replica fault at once) against the real service, a few minutes in all.
# Needs Debian's rabbitmq-server and postgresql (tests/run-all.sh installs them) and root for the tmpfs mounts; without
# root the disk scenario is skipped (the suite prints why). Exit code non-zero when a check fails. Figures of full runs:
# docs/reliability.md (`dotnet run -c Release --project tests/B25.FaultSuite -- --scale full`).
# Run from anywhere: bash tests/stack/40-faults.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { echo "FAIL: rabbitmq-server not installed (tests/run-all.sh installs it)" >&2; exit 1; }
[ -x /usr/lib/postgresql/15/bin/postgres ] || { echo "FAIL: postgresql (15) not installed (tests/run-all.sh installs it)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root: the disk scenario (tmpfs mount, full and read-only) will be skipped"
fi

# --no-report: CI figures are printed, not written into docs/reliability.md (that holds measured runs).
dotnet run -c Release --project tests/B25.FaultSuite -- --scale ci --no-report "$@"
