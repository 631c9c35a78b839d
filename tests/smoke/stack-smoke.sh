#!/usr/bin/env bash
# Smoke suite of the B25 observability stack (plan sections 7.4 and 8.1-8.2, 8.7), for a local
# stack and for a deployed one alike: Prometheus healthy, every target up, the key B25 metrics
# scraped, recording and alert rules loaded without evaluation errors, Alertmanager healthy and
# known to Prometheus, and (optionally) the B25.Alerting service ready.
#
# Needs bash, curl, grep and sed only (no jq, no python).
#
#   PROMETHEUS_URL=http://127.0.0.1:9090 ALERTMANAGER_URL=http://127.0.0.1:9093 \
#   ALERTING_URL=http://127.0.0.1:8080 tests/smoke/stack-smoke.sh
#
# Environment:
#   PROMETHEUS_URL     required (default http://127.0.0.1:9090)
#   ALERTMANAGER_URL   required (default http://127.0.0.1:9093)
#   ALERTING_URL       optional: B25.Alerting base URL; checks /health/live and /health/ready
#   REQUIRED_JOBS      space-separated jobs that must be up (default: the seven B25 services)
#   STRICT_TARGETS     1 (default): every active target must be up, as in the plan; 0: only REQUIRED_JOBS
#   KEY_METRICS        space-separated metrics that must have series (default below)
#   EXPECTED_ALERTS    space-separated alert names that must be loaded (default below)
#   EXPECT_NO_FIRING   1: fail if any alert is firing (a healthy test stack); default 0: list them only
#   CURL_OPTS          extra curl options for a deployed stack (e.g. "-u user:pass" or "-H 'X-Token: ...'")
#   TIMEOUT            seconds per request (default 10)
set -uo pipefail

PROMETHEUS_URL=${PROMETHEUS_URL:-http://127.0.0.1:9090}
ALERTMANAGER_URL=${ALERTMANAGER_URL:-http://127.0.0.1:9093}
ALERTING_URL=${ALERTING_URL:-}
REQUIRED_JOBS=${REQUIRED_JOBS:-"market-data order-execution strategy-engine account-monitor risk-manager config-service dashboard-server"}
STRICT_TARGETS=${STRICT_TARGETS:-1}
KEY_METRICS=${KEY_METRICS:-"up http_requests_total http_request_duration_seconds_bucket market_data_websocket_connected market_data_websocket_latency_seconds_count order_execution_orders_total strategy_engine_signals_generated_total account_monitor_balance_usd account_monitor_drawdown_pct risk_manager_limit_violations_total"}
EXPECTED_ALERTS=${EXPECTED_ALERTS:-"ServiceDown HighErrorRate SlowResponseTime WebSocketDisconnected HighDrawdown RiskLimitViolation"}
EXPECT_NO_FIRING=${EXPECT_NO_FIRING:-0}
TIMEOUT=${TIMEOUT:-10}
PROMETHEUS_URL=${PROMETHEUS_URL%/}
ALERTMANAGER_URL=${ALERTMANAGER_URL%/}
ALERTING_URL=${ALERTING_URL%/}

checks=0
failures=0
ok() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }
info() { echo "     $*"; }

# curl_get URL [curl args...]: body on stdout; non-zero on transport error or HTTP >= 400.
curl_get() {
  local url=$1
  shift
  # shellcheck disable=SC2086 # CURL_OPTS is a list of options on purpose
  eval curl -sS --fail --max-time "$TIMEOUT" ${CURL_OPTS:-} '"$@"' '"$url"'
}

# promql QUERY: the JSON answer of an instant query.
promql() { curl_get "$PROMETHEUS_URL/api/v1/query" -G --data-urlencode "query=$1"; }

# first_value JSON: the value of the first sample of an instant-query answer ("" when empty).
first_value() { sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p' <<<"$1" | head -n 1; }

# count_of JSON PATTERN: how many times a literal pattern occurs.
count_of() { grep -oF -- "$2" <<<"$1" | wc -l | tr -d ' '; }

echo "B25 stack smoke: prometheus=$PROMETHEUS_URL alertmanager=$ALERTMANAGER_URL${ALERTING_URL:+ alerting=$ALERTING_URL}"

# ---- 1. Prometheus up ---------------------------------------------------------------------------
for endpoint in -/healthy -/ready; do
  if curl_get "$PROMETHEUS_URL/$endpoint" >/dev/null; then ok "prometheus $endpoint"; else fail "prometheus $endpoint"; fi
done

# ---- 2. targets (8.1 test 1) --------------------------------------------------------------------
if targets=$(curl_get "$PROMETHEUS_URL/api/v1/targets?state=active"); then
  up=$(count_of "$targets" '"health":"up"')
  down=$(count_of "$targets" '"health":"down"')
  unknown=$(count_of "$targets" '"health":"unknown"')
  if [ "$up" -gt 0 ] && { [ "$STRICT_TARGETS" != 1 ] || [ $((down + unknown)) -eq 0 ]; }; then
    ok "targets: $up up, $down down, $unknown unknown"
  else
    fail "targets: $up up, $down down, $unknown unknown (every active target must be up)"
    # The scrape URLs of the unhealthy targets, for the reader.
    grep -o '"scrapeUrl":"[^"]*"[^{}]*"health":"\(down\|unknown\)"' <<<"$targets" | sed 's/"scrapeUrl":"\([^"]*\)".*/\1/' | while read -r u; do info "not up: $u"; done
  fi
else
  fail "GET /api/v1/targets"
fi

# ---- 3. the B25 jobs up (8.1 test 2) ------------------------------------------------------------
for job in $REQUIRED_JOBS; do
  answer=$(promql "min(up{job=\"$job\"})") || { fail "query up{job=\"$job\"}"; continue; }
  value=$(first_value "$answer")
  if [ "$value" = "1" ]; then ok "job $job up"; else fail "job $job: up=${value:-absent}"; fi
done

# ---- 4. key metrics scraped (8.1 test 3) --------------------------------------------------------
for metric in $KEY_METRICS; do
  answer=$(promql "count($metric)") || { fail "query count($metric)"; continue; }
  value=$(first_value "$answer")
  if [ -n "$value" ] && [ "$value" != "0" ]; then ok "metric $metric: $value series"; else fail "metric $metric: no series"; fi
done

# ---- 5. rules loaded and evaluating (8.2 test 3) ------------------------------------------------
if rules=$(curl_get "$PROMETHEUS_URL/api/v1/rules"); then
  alerting=$(count_of "$rules" '"type":"alerting"')
  recording=$(count_of "$rules" '"type":"recording"')
  errors=$(count_of "$rules" '"health":"err"')
  if [ "$alerting" -gt 0 ]; then ok "$alerting alert rules, $recording recording rules loaded"; else fail "no alert rules loaded"; fi
  if [ "$errors" -eq 0 ]; then
    ok "no rule evaluation errors"
  else
    fail "$errors rules fail to evaluate"
    grep -o '"lastError":"[^"]\+"' <<<"$rules" | sed 's/"lastError"://' | sort -u | while read -r e; do info "rule error: $e"; done
  fi
  for alert in $EXPECTED_ALERTS; do
    if grep -qF "\"name\":\"$alert\"" <<<"$rules"; then ok "alert rule $alert loaded"; else fail "alert rule $alert missing"; fi
  done
else
  fail "GET /api/v1/rules"
fi

# ---- 6. firing alerts (ALERTS) ------------------------------------------------------------------
# The Watchdog (alert_role="watchdog") fires all the time on purpose: the dead-man's switch.
if answer=$(promql 'ALERTS{alertstate="firing",alert_role!="watchdog"}'); then
  firing=$(grep -o '"alertname":"[^"]*"' <<<"$answer" | sed 's/"alertname":"\([^"]*\)"/\1/' | sort | uniq -c | sed 's/^ *//' | tr '\n' ',' | sed 's/,$//; s/,/, /g')
  if [ -z "$firing" ]; then
    ok "no alert firing"
  elif [ "$EXPECT_NO_FIRING" = 1 ]; then
    fail "alerts firing on a stack expected healthy: $firing"
  else
    ok "alerts firing (for the reader): $firing"
  fi
else
  fail "query ALERTS"
fi

# ---- 7. Alertmanager healthy and known to Prometheus (7.4 health checks) --------------------------
for endpoint in -/healthy -/ready; do
  if curl_get "$ALERTMANAGER_URL/$endpoint" >/dev/null; then ok "alertmanager $endpoint"; else fail "alertmanager $endpoint"; fi
done
if status=$(curl_get "$ALERTMANAGER_URL/api/v2/status"); then
  if grep -qF '"config":{"original":' <<<"$status"; then ok "alertmanager config loaded"; else fail "alertmanager status has no config"; fi
  cluster=$(sed -n 's/.*"cluster":{[^}]*"status":"\([a-z]*\)".*/\1/p' <<<"$status")
  info "alertmanager cluster status: ${cluster:-unknown}"
else
  fail "GET alertmanager /api/v2/status"
fi
if ams=$(curl_get "$PROMETHEUS_URL/api/v1/alertmanagers"); then
  active=$(sed -n 's/.*"activeAlertmanagers":\[\([^]]*\)\].*/\1/p' <<<"$ams")
  if grep -qF '"url"' <<<"$active"; then ok "prometheus sends alerts to $(grep -o '"url":"[^"]*"' <<<"$active" | sed 's/"url":"\([^"]*\)"/\1/' | tr '\n' ' ')"; else fail "prometheus has no active alertmanager"; fi
else
  fail "GET /api/v1/alertmanagers"
fi

# ---- 8. B25.Alerting (optional) ----------------------------------------------------------------
if [ -n "$ALERTING_URL" ]; then
  for endpoint in health/live health/ready; do
    if curl_get "$ALERTING_URL/$endpoint" >/dev/null; then ok "b25-alerting /$endpoint"; else fail "b25-alerting /$endpoint"; fi
  done
fi

if [ "$failures" -eq 0 ]; then
  echo "stack smoke OK ($checks checks)"
  exit 0
fi
echo "stack smoke FAILED: $failures of $checks checks"
exit 1
