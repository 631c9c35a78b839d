#!/usr/bin/env bash
# Alertmanager checks: config validity, every receiver is the B25.Alerting webhook, the route tree
# (amtool config routes test) per severity, tier and action, and inhibition against a throwaway
# Alertmanager on 127.0.0.1 (skipped if prometheus-alertmanager or curl is missing).
# Needs only the Debian packages prometheus-alertmanager (amtool). Run from the repository root.
set -uo pipefail
cd "$(dirname "$0")/../.."

CFG=alertmanager/alertmanager.yml
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

command -v amtool >/dev/null || { echo "FAIL: amtool not installed (apt-get install prometheus-alertmanager)" >&2; exit 1; }
[ -f "$CFG" ] || { echo "FAIL: $CFG missing" >&2; exit 1; }

tmp=$(mktemp -d)
am_pid=""
cleanup() {
  if [ -n "$am_pid" ]; then kill "$am_pid" 2>/dev/null; wait "$am_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The credentials file exists only inside the Alertmanager container: check a copy that points at
# a temporary token. The live copy also sends its webhooks to a closed local port (no network).
echo "test-token" >"$tmp/token"
sed "s#/etc/alertmanager/secrets/b25-alerting-token#$tmp/token#" "$CFG" >"$tmp/am.yml"
sed "s#http://b25-alerting:8080#http://127.0.0.1:9#" "$tmp/am.yml" >"$tmp/am-live.yml"

# ---- 1. config --------------------------------------------------------------------------------
if out=$(amtool check-config "$tmp/am.yml" 2>&1); then ok "amtool check-config"; else echo "$out" >&2; fail "amtool check-config $CFG"; fi

# ---- 2. every receiver is the B25.Alerting webhook, with bearer token and resolved messages ---
for want in 'url: http://b25-alerting:8080/webhooks/alertmanager' 'send_resolved: true' 'type: Bearer' \
            'credentials_file: /etc/alertmanager/secrets/b25-alerting-token'; do
  grep -qF "$want" "$CFG" || fail "$CFG lacks '$want'"
done
if grep -qE '^[[:space:]]*(slack|pagerduty|email|opsgenie|victorops|pushover|sns|telegram|webex|wechat|discord)_configs:' "$CFG"; then
  fail "$CFG has a receiver that bypasses the B25.Alerting webhook"
fi
receivers=$(awk '/^receivers:/ { r = 1; next } /^[^[:space:]#]/ { r = 0 } r && /^  - name:/ { print $3 }' "$CFG")
for r in b25-critical b25-warning b25-info b25-default b25-emergency-stop; do
  grep -qx "$r" <<<"$receivers" || fail "receiver $r missing"
done
for r in $receivers; do
  awk -v r="$r" '/^  - name:/ { cur = $3 } cur == r && /webhook_configs:/ { f = 1 } END { exit !f }' "$CFG" || fail "receiver $r has no webhook_configs"
done
ok "receivers: $(echo $receivers)"

# ---- 3. routes --------------------------------------------------------------------------------
route() { # expected receiver, then labels
  local want=$1; shift
  if out=$(amtool config routes test --config.file="$tmp/am.yml" --verify.receivers="$want" "$@" 2>&1); then
    ok "route $* -> $want"
  else
    fail "route $* -> expected $want, got: $(echo "$out" | grep -v '^Warning' | head -1)"
  fi
}
for tier in critical core support infrastructure; do
  route b25-critical alertname=ServiceDown severity=critical tier=$tier service=x
  route b25-warning  alertname=SlowResponseTime severity=warning tier=$tier service=x
  route b25-info     alertname=StrategyInactive severity=info tier=$tier service=x
done
route b25-emergency-stop alertname=HighDrawdown severity=critical action=emergency-stop tier=core service=account-monitor
route b25-emergency-stop alertname=RiskLimitViolation severity=critical action=emergency-stop tier=core service=risk-manager limit_type=leverage
route b25-default alertname=SomethingNew
route b25-default alertname=SomethingNew severity=page tier=core
# the maintenance window mutes info and support-tier warnings only
grep -q 'mute_time_intervals: \[b25-maintenance\]' "$CFG" || fail "no route uses the b25-maintenance time interval"
awk '/matchers:.*severity="critical"/ { c = 1 } c && /mute_time_intervals/ { bad = 1 } /matchers:/ && !/severity="critical"/ { c = 0 } END { exit bad }' "$CFG" \
  || fail "the critical route must never be muted"

# ---- 4. inhibition, live on 127.0.0.1 ----------------------------------------------------------
if command -v prometheus-alertmanager >/dev/null && command -v curl >/dev/null; then
  for attempt in 1 2 3; do # a random port may be taken: try another
    port=$((19500 + RANDOM % 400))
    url="http://127.0.0.1:$port"
    prometheus-alertmanager --config.file="$tmp/am-live.yml" --storage.path="$tmp/data$attempt" \
      --cluster.listen-address= --web.listen-address="127.0.0.1:$port" --web.external-url="$url" \
      >"$tmp/am.log" 2>&1 &
    am_pid=$!
    for _ in $(seq 1 40); do
      curl -sf "$url/-/ready" >/dev/null 2>&1 && break
      kill -0 "$am_pid" 2>/dev/null || break
      sleep 0.25
    done
    curl -sf "$url/-/ready" >/dev/null 2>&1 && break
    kill "$am_pid" 2>/dev/null; wait "$am_pid" 2>/dev/null; am_pid=""
  done
  if [ -z "$am_pid" ]; then
    tail -5 "$tmp/am.log" >&2
    fail "throwaway Alertmanager did not start on $url"
  else
    add() { amtool --alertmanager.url="$url" alert add "$@" >/dev/null || fail "amtool alert add $*"; }
    add ServiceDown service=market-data tier=critical severity=critical
    add HighErrorRate service=market-data tier=critical severity=critical
    add PrometheusTargetDown service=market-data tier=critical severity=info
    add HighErrorRate service=order-execution tier=critical severity=critical
    add DiskSpaceLow instance=host-a severity=critical
    add HighMemoryUsage instance=host-a severity=warning
    add HighMemoryUsage instance=host-b severity=warning
    add WebSocketDisconnected service=market-data exchange=binance severity=critical
    add OrderBookStale service=market-data exchange=binance symbol=BTCUSDT severity=critical
    add OrderBookStale service=order-execution exchange=okx symbol=BTCUSDT severity=critical
    sleep 0.5
    inhibited=$(amtool --alertmanager.url="$url" alert query --no-active --inhibited -o extended 2>&1)
    active=$(amtool --alertmanager.url="$url" alert query -o extended 2>&1)
    has() { # list, then key=value pairs that must all be on one line
      local list=$1; shift
      local pat
      while IFS= read -r line; do
        local all=1
        for pat in "$@"; do [[ $line == *"${pat%%=*}=\"${pat#*=}\""* ]] || { all=0; break; }; done
        [ $all = 1 ] && return 0
      done <<<"$list"
      return 1
    }
    expect_inhibited() { if has "$inhibited" "$@"; then ok "inhibited: $*"; else fail "expected inhibited: $*"; fi; }
    expect_active() { if has "$active" "$@" && ! has "$inhibited" "$@"; then ok "not inhibited: $*"; else fail "expected NOT inhibited: $*"; fi; }
    expect_inhibited alertname=HighErrorRate service=market-data
    expect_inhibited alertname=PrometheusTargetDown service=market-data
    expect_inhibited alertname=HighMemoryUsage instance=host-a
    expect_inhibited alertname=OrderBookStale exchange=binance
    expect_active alertname=ServiceDown service=market-data
    expect_active alertname=HighErrorRate service=order-execution
    expect_active alertname=HighMemoryUsage instance=host-b
    expect_active alertname=DiskSpaceLow instance=host-a
    expect_active alertname=OrderBookStale exchange=okx
  fi
else
  echo "skip: live inhibition check (prometheus-alertmanager or curl missing)"
fi

if [ "$failures" -gt 0 ]; then
  echo "20-alertmanager: $failures check(s) failed" >&2
  exit 1
fi
echo "20-alertmanager: all checks passed"
