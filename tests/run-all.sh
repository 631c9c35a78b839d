#!/usr/bin/env bash
# Runs every test of the repository: the .NET solution (unit, API, broker and crash tests) and the
# stack checks in tests/stack/ (promtool, amtool, dashboards, compose, end to end).
# Installs the Debian packages the tests need when they are missing; the tests start and stop the
# servers themselves, on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or install them first)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# -v q keeps the build quiet; the console logger at "minimal" still prints each failed test's message and stack trace.
dotnet test B25.Alerting.sln --nologo -v q -c Release --logger "console;verbosity=minimal" "$@"

# The behaviour tests again with the service on PostgreSQL (the shared store of several replicas);
# the tests start a throwaway PostgreSQL 15 on 127.0.0.1 and stop it. SQLite-only tests are left out.
echo "== behaviour tests on PostgreSQL"
B25_TEST_STORAGE=postgres dotnet test tests/B25.Alerting.Tests --no-build --nologo -v q -c Release --logger "console;verbosity=minimal" \
  --filter "FullyQualifiedName~IncidentProcessorTests|FullyQualifiedName~JournalRetentionTests|FullyQualifiedName~RecoverySweepTests|FullyQualifiedName~IncidentLifecycleTests|FullyQualifiedName~SlackDeliveryTests|FullyQualifiedName~SlackReconciliationTests|FullyQualifiedName~EmailDeliveryTests|FullyQualifiedName~PagerDutyDeliveryTests|FullyQualifiedName~PagerDutyNotifierTests|FullyQualifiedName~EmergencyStop|FullyQualifiedName~WatchdogTests|FullyQualifiedName~WebhookInputTests|FullyQualifiedName~LargeNotificationTests|FullyQualifiedName~B25.Alerting.Tests.Acknowledgement|FullyQualifiedName~WarmUpStorageTests" \
  "$@"

shopt -s nullglob
for check in tests/stack/*.sh; do
  echo "== $check"
  bash "$check"
done
echo "all tests passed"
