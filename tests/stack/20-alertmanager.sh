#!/usr/bin/env bash
# Alertmanager checks: config validity; every receiver is the B25.Alerting webhook except exactly
# one, b25-fallback, which uses Alertmanager's own notifiers with secrets from files; the route
# tree (amtool config routes test) per severity, tier and action, the fallback and watchdog
# routes; inhibition against a throwaway Alertmanager on 127.0.0.1, and (if python3 is present)
# that this Alertmanager really pages AlertingServiceDown through its own Slack and PagerDuty
# notifiers and the Watchdog through the webhook (skipped if prometheus-alertmanager or curl is
# missing). Needs only the Debian package prometheus-alertmanager (amtool). Run from the
# repository root.
set -uo pipefail
cd "$(dirname "$0")/../.."

CFG=alertmanager/alertmanager.yml
FALLBACK=b25-fallback
SECRETS=/etc/alertmanager/secrets
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

command -v amtool >/dev/null || { echo "FAIL: amtool not installed (apt-get install prometheus-alertmanager)" >&2; exit 1; }
[ -f "$CFG" ] || { echo "FAIL: $CFG missing" >&2; exit 1; }

tmp=$(mktemp -d)
am_pid=""
sink_pid=""
cleanup() {
  if [ -n "$am_pid" ]; then kill "$am_pid" 2>/dev/null; wait "$am_pid" 2>/dev/null; fi
  if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The secret files exist only inside the Alertmanager container: check a copy that points at
# temporary ones. The live copy (section 4) sends to local ports only (no network).
echo "test-token" >"$tmp/token"
echo "fallback-routing-key" >"$tmp/pagerduty-key"
echo "fallback-smtp-password" >"$tmp/smtp-password"
echo "http://127.0.0.1:9/slack" >"$tmp/slack-url"
sed -e "s#$SECRETS/b25-alerting-token#$tmp/token#" \
    -e "s#$SECRETS/fallback-slack-webhook-url#$tmp/slack-url#" \
    -e "s#$SECRETS/fallback-pagerduty-routing-key#$tmp/pagerduty-key#" \
    -e "s#$SECRETS/fallback-smtp-password#$tmp/smtp-password#" "$CFG" >"$tmp/am.yml"

# ---- 1. config --------------------------------------------------------------------------------
if out=$(amtool check-config "$tmp/am.yml" 2>&1); then ok "amtool check-config"; else echo "$out" >&2; fail "amtool check-config $CFG"; fi

# ---- 2. receivers: the B25.Alerting webhook, except exactly the fallback ------------------------
for want in 'url: http://b25-alerting:8080/webhooks/alertmanager' 'send_resolved: true' 'type: Bearer' \
            "credentials_file: $SECRETS/b25-alerting-token"; do
  grep -qF "$want" "$CFG" || fail "$CFG lacks '$want'"
done
receivers=$(awk '/^receivers:/ { r = 1; next } /^[^[:space:]#]/ { r = 0 } r && /^  - name:/ { print $3 }' "$CFG")
for r in b25-critical b25-warning b25-info b25-default b25-emergency-stop watchdog "$FALLBACK"; do
  grep -qx "$r" <<<"$receivers" || fail "receiver $r missing"
done
# integrations of one receiver: its `*_configs:` keys
integrations() {
  awk -v r="$1" '/^receivers:/ { in_r = 1; next } /^[^[:space:]#]/ { in_r = 0 }
    in_r && /^  - name:/ { cur = $3; next }
    in_r && cur == r && /^    [a-z]+_configs:/ { sub(/^ +/, ""); sub(/:.*/, ""); print }' "$CFG" | sort -u | tr '\n' ' ' | sed 's/ $//'
}
for r in $receivers; do
  got=$(integrations "$r")
  if [ "$r" = "$FALLBACK" ]; then
    [ "$got" = "email_configs pagerduty_configs slack_configs" ] \
      || fail "receiver $r must use Alertmanager's own email, PagerDuty and Slack notifiers and no webhook, has: ${got:-nothing}"
  else
    [ "$got" = "webhook_configs" ] || fail "receiver $r bypasses the B25.Alerting webhook (has: ${got:-nothing}); only $FALLBACK may"
  fi
done
# Secrets come from mounted files, never from this file.
fallback_block=$(awk -v r="$FALLBACK" '/^receivers:/ { in_r = 1; next } /^[^[:space:]#]/ { in_r = 0 }
  in_r && /^  - name:/ { cur = $3 } in_r && cur == r' "$CFG")
for want in "api_url_file: $SECRETS/" "routing_key_file: $SECRETS/" "auth_password_file: $SECRETS/"; do
  grep -qF "$want" <<<"$fallback_block" || fail "receiver $FALLBACK lacks '$want...'"
done
if grep -nE '^[[:space:]]*(- )?(api_url|routing_key|service_key|auth_password|auth_secret|slack_api_url|opsgenie_api_key|victorops_api_key|bot_token|token|credentials):' "$CFG" >&2; then
  fail "$CFG holds a secret inline: use the *_file form and a file under $SECRETS/"
fi
ok "receivers: $(echo $receivers) (webhook, except $FALLBACK: $(integrations "$FALLBACK"), secrets from files)"

# The fallback route is the first child of the root route and stops there; the watchdog route
# resends every minute.
first_route=$(awk '/^route:/ { r = 1 } r && /^    - receiver:/ { print $3; exit }' "$CFG")
[ "$first_route" = "$FALLBACK" ] || fail "the first route must be $FALLBACK, is ${first_route:-none}"
route_block() { awk -v r="$1" '/^route:/ { r0 = 1 } /^[^[:space:]#]/ && !/^route:/ { r0 = 0 }
  r0 && /^    - receiver:/ { cur = $3; n[cur]++ } r0 && cur == r && n[cur] == 1' "$CFG"; }
grep -qE '^[[:space:]]+continue:[[:space:]]*false' <<<"$(route_block "$FALLBACK")" || fail "the $FALLBACK route must say continue: false"
watchdog_route=$(route_block watchdog)
for want in 'matchers: \[.alert_role="watchdog".\]' 'group_wait: 0s' 'group_interval: 1m' 'repeat_interval: 1m' 'continue: false'; do
  grep -qE "^[[:space:]]+$want" <<<"$watchdog_route" || fail "the watchdog route lacks '$want'"
done
grep -q mute_time_intervals <<<"$(route_block "$FALLBACK")$watchdog_route" && fail "the $FALLBACK and watchdog routes must never be muted"

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
# who watches the watcher: around the webhook when it cannot carry the page, through it otherwise
route "$FALLBACK" alertname=AlertingServiceDown severity=critical service=b25-alerting tier=infrastructure category=infrastructure
route "$FALLBACK" alertname=AlertingNotificationsNotProcessed severity=critical service=b25-alerting tier=infrastructure
route "$FALLBACK" alertname=AlertingWatchdogMissing severity=critical service=b25-alerting
route watchdog alertname=Watchdog severity=none alert_role=watchdog category=infrastructure
route b25-warning alertname=AlertingReplicaDown severity=warning service=b25-alerting tier=infrastructure instance=b25-alerting-1:8080
route b25-critical alertname=AlertingSlackAuthFailing severity=critical service=b25-alerting tier=infrastructure
route b25-warning alertname=AlertingContextSourceFailing severity=warning service=b25-alerting tier=infrastructure category=infrastructure source=prometheus
route b25-warning alertname=AlertingSlackFallbackMessages severity=warning service=b25-alerting tier=infrastructure category=infrastructure
route b25-critical alertname=AlertmanagerWebhookFailing severity=critical service=alertmanager tier=infrastructure
route b25-default alertname=SomethingNew severity=page tier=core
# the maintenance window mutes info and support-tier warnings only
grep -q 'mute_time_intervals: \[b25-maintenance\]' "$CFG" || fail "no route uses the b25-maintenance time interval"
awk '/matchers:.*severity="critical"/ { c = 1 } c && /mute_time_intervals/ { bad = 1 } /matchers:/ && !/severity="critical"/ { c = 0 } END { exit bad }' "$CFG" \
  || fail "the critical route must never be muted"

# ---- 4. live on 127.0.0.1: inhibition, and what reaches whom ------------------------------------
if command -v prometheus-alertmanager >/dev/null && command -v curl >/dev/null; then
  # A local sink (python3) stands in for the webhook, Slack and PagerDuty and logs every POST;
  # without python3 everything goes to a closed local port and only inhibition is checked.
  sink="http://127.0.0.1:9"
  if command -v python3 >/dev/null; then
    cat >"$tmp/sink.py" <<'EOF'
import http.server, json, sys
log, port_file = sys.argv[1], sys.argv[2]
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"), "body": body}) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
with open(port_file, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
EOF
    python3 "$tmp/sink.py" "$tmp/sink.log" "$tmp/sink.port" &
    sink_pid=$!
    for _ in $(seq 1 40); do [ -s "$tmp/sink.port" ] && break; sleep 0.25; done
    if [ -s "$tmp/sink.port" ]; then sink="http://127.0.0.1:$(cat "$tmp/sink.port")"; else fail "the local sink did not start"; fi
  fi
  echo "$sink/slack" >"$tmp/slack-url"
  sed -e "s#http://b25-alerting:8080#$sink#" -e "s#smarthost: .*#smarthost: 127.0.0.1:9#" \
      -e "s#^global:#global:\n  pagerduty_url: $sink/pagerduty#" "$tmp/am.yml" >"$tmp/am-live.yml"
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
    add AlertingServiceDown service=b25-alerting tier=infrastructure severity=critical category=infrastructure
    add AlertingReplicaDown service=b25-alerting tier=infrastructure instance=b25-alerting-1:8080 severity=warning
    add Watchdog alert_role=watchdog severity=none category=infrastructure
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
    expect_inhibited alertname=AlertingReplicaDown service=b25-alerting
    expect_active alertname=AlertingServiceDown service=b25-alerting
    expect_active alertname=Watchdog

    # What reached whom: AlertingServiceDown through Alertmanager's own Slack and PagerDuty
    # notifiers (secrets read from the files), never the webhook; the Watchdog and an ordinary
    # critical alert through the webhook with the bearer token (group_wait 10s: wait for it).
    if [ -n "$sink_pid" ]; then
      check_sink() {
        python3 - "$tmp/sink.log" "$@" <<'EOF'
import json, sys
log, want = sys.argv[1], sys.argv[2:]
posts = []
try:
    with open(log) as f:
        posts = [json.loads(line) for line in f]
except FileNotFoundError:
    pass
def webhook(p):
    return p["path"] == "/webhooks/alertmanager" and p["auth"] == "Bearer test-token"
def alertnames(p):
    try:
        body = json.loads(p["body"])
    except ValueError:
        return set()
    return {a.get("labels", {}).get("alertname") for a in body.get("alerts", [])}
checks = {
    "slack": lambda: any(p["path"] == "/slack" and "AlertingServiceDown" in p["body"] for p in posts),
    "pagerduty": lambda: any(p["path"] == "/pagerduty" and "AlertingServiceDown" in p["body"]
                             and json.loads(p["body"]).get("routing_key") == "fallback-routing-key" for p in posts),
    "watchdog": lambda: any(webhook(p) and json.loads(p["body"]).get("receiver") == "watchdog" for p in posts),
    "critical": lambda: any(webhook(p) and json.loads(p["body"]).get("receiver") == "b25-critical"
                            and "HighErrorRate" in alertnames(p) for p in posts),
    "no-fallback-alert-on-webhook": lambda: not any(p["path"] == "/webhooks/alertmanager" and "AlertingServiceDown" in p["body"] for p in posts),
}
sys.exit(0 if all(checks[w]() for w in want) else 1)
EOF
      }
      for _ in $(seq 1 80); do # up to 20 s
        check_sink slack pagerduty watchdog critical && break
        sleep 0.25
      done
      if check_sink slack; then ok "AlertingServiceDown reached Slack through Alertmanager's own notifier (api_url_file)"; else fail "AlertingServiceDown did not reach the Slack stand-in"; fi
      if check_sink pagerduty; then ok "AlertingServiceDown reached PagerDuty through Alertmanager's own notifier, routing key from routing_key_file"; else fail "AlertingServiceDown did not reach the PagerDuty stand-in with the routing key of the file"; fi
      if check_sink watchdog; then ok "Watchdog reached the webhook as receiver watchdog"; else fail "Watchdog did not reach the webhook as receiver watchdog"; fi
      if check_sink critical; then ok "an ordinary critical alert still reached the webhook (b25-critical)"; else fail "HighErrorRate did not reach the webhook as b25-critical"; fi
      if check_sink no-fallback-alert-on-webhook; then ok "AlertingServiceDown never reached the webhook"; else fail "AlertingServiceDown was sent to the webhook"; fi
    else
      echo "skip: live delivery check (python3 missing)"
    fi
  fi
else
  echo "skip: live checks (prometheus-alertmanager or curl missing)"
fi

if [ "$failures" -gt 0 ]; then
  echo "20-alertmanager: $failures check(s) failed" >&2
  exit 1
fi
echo "20-alertmanager: all checks passed"
