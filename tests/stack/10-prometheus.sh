#!/usr/bin/env bash
# Prometheus stack checks: config, rules, unit tests, metric names against the metrics contract,
# required alert metadata, and (if curl is present) a live Prometheus 2.42 serving the shipped
# Watchdog rule with its relative runbook_url. Needs only promtool/prometheus (Debian) and awk/sed/grep.
# Run from the repository root: bash tests/stack/10-prometheus.sh
set -uo pipefail
cd "$(dirname "$0")/../.."

P=prometheus
CONTRACT=$P/metrics-contract.yaml
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

command -v promtool >/dev/null || { echo "FAIL: promtool not installed (apt-get install prometheus)" >&2; exit 1; }

shopt -s nullglob
rule_files=("$P"/rules/*.yml "$P"/alerts/*.yml)
test_files=("$P"/tests/*.yml)
alert_files=("$P"/alerts/*.yml)
[ ${#alert_files[@]} -gt 0 ] || { echo "FAIL: no alert files in $P/alerts" >&2; exit 1; }
[ ${#test_files[@]} -gt 0 ] || { echo "FAIL: no unit tests in $P/tests" >&2; exit 1; }

# ---- 1. promtool ------------------------------------------------------------------------------
if out=$(promtool check config "$P/prometheus.yml" 2>&1); then ok "promtool check config"; else echo "$out" >&2; fail "promtool check config $P/prometheus.yml"; fi
if out=$(promtool check rules "${rule_files[@]}" 2>&1); then ok "promtool check rules (${#rule_files[@]} files)"; else echo "$out" >&2; fail "promtool check rules"; fi
if out=$(promtool test rules "${test_files[@]}" 2>&1); then ok "promtool test rules (${#test_files[@]} files)"; else echo "$out" >&2; fail "promtool test rules"; fi

# ---- 2. every metric named in a rule expression is in the contract ----------------------------
# Known names: every `- name:` of the contract (metrics, exporters, recorded); histograms also
# as _bucket/_sum/_count.
known=$(awk '
  /^[A-Za-z_]+:/ { sec = $1 }
  (sec == "metrics:" || sec == "exporters:" || sec == "recorded:") && /^[[:space:]]*- name:/ { n = $3; print n }
  (sec == "metrics:" || sec == "exporters:") && /^[[:space:]]*type:[[:space:]]*histogram/ { print n "_bucket"; print n "_sum"; print n "_count" }
' "$CONTRACT" | sort -u)
[ -n "$known" ] || fail "no metric names read from $CONTRACT"

# Expressions: single-line `expr: ...` and block scalars `expr: |` (more-indented lines follow).
extract_exprs() {
  awk '
    inblock {
      if ($0 ~ /^[[:space:]]*$/) next
      match($0, /^[[:space:]]*/)
      if (RLENGTH > ind) { print; next }
      inblock = 0
    }
    /^[[:space:]]*expr:/ {
      line = $0; sub(/^[[:space:]]*expr:[[:space:]]*/, "", line)
      if (line ~ /^[|>][-+]?[[:space:]]*$/) { inblock = 1; match($0, /^[[:space:]]*/); ind = RLENGTH; next }
      print line
    }
  ' "$@"
}
# Strip strings, label matchers, ranges and grouping clauses; keep identifiers not followed by "(".
used=$(extract_exprs "${rule_files[@]}" \
  | sed -E "s/\"([^\"\\\\]|\\\\.)*\"//g; s/'[^']*'//g; s/\{[^}]*\}//g; s/\[[^]]*\]//g" \
  | sed -E 's/\b(by|without|on|ignoring|group_left|group_right)[[:space:]]*\([^)]*\)//g' \
  | grep -oE '[A-Za-z0-9_:.]+[[:space:]]*\(?' \
  | grep -vE '\($' | sed -E 's/[[:space:]]+$//' | grep -E '^[A-Za-z_:][A-Za-z0-9_:]*$' \
  | grep -vxE 'and|or|unless|bool|offset|by|without|on|ignoring|group_left|group_right|inf|nan|Inf|NaN|atan2|start|end' \
  | sort -u)
[ -n "$used" ] || fail "no metric names extracted from the rule expressions"
unknown=$(comm -23 <(echo "$used") <(echo "$known"))
if [ -n "$unknown" ]; then
  fail "metrics used in rules but missing from $CONTRACT: $(echo $unknown)"
else
  ok "all $(echo "$used" | wc -l) metric names used in rules are in the contract"
fi

# The contract's recorded: section lists exactly the recording rules.
records=$(grep -hE '^[[:space:]]*- record:' "${rule_files[@]}" | awk '{print $3}' | sort -u)
contract_records=$(awk '/^[A-Za-z_]+:/ { sec = $1 } sec == "recorded:" && /^[[:space:]]*- name:/ { print $3 }' "$CONTRACT" | sort -u)
if [ "$records" != "$contract_records" ]; then
  fail "recording rules and the contract's recorded: section differ: $(diff <(echo "$records") <(echo "$contract_records") | grep '^[<>]' | tr '\n' ' ')"
else
  ok "recorded: section matches the $(echo "$records" | wc -l) recording rules"
fi

# The contract's services: section and prometheus.yml agree (job, target, interval, labels).
global_interval=$(awk '/^global:/ { g = 1; next } /^[^[:space:]]/ { g = 0 } g && /scrape_interval:/ { print $2; exit }' "$P/prometheus.yml")
svc_count=0
while read -r svc job port tier interval; do
  svc_count=$((svc_count + 1))
  block=$(awk -v j="$job" '/^[[:space:]]*- job_name:/ { cur = $3 } cur == j' "$P/prometheus.yml")
  if [ -z "$block" ]; then fail "prometheus.yml has no job $job (service $svc)"; continue; fi
  grep -qF "'$svc:$port'" <<<"$block" || fail "job $job does not scrape $svc:$port"
  got_interval=$(awk '/scrape_interval:/ { print $2; exit }' <<<"$block")
  [ "${got_interval:-$global_interval}" = "$interval" ] || fail "job $job scrapes every ${got_interval:-$global_interval}, contract says $interval"
  grep -qE "service: $svc[,}]" <<<"$block" || fail "job $job lacks the target label service: $svc"
  grep -qE "tier: $tier[,}]" <<<"$block" || fail "job $job lacks the target label tier: $tier"
done < <(awk '/^[A-Za-z_]+:/ { sec = $1; next } sec == "services:" && NF {
  gsub(/[{},]/, " "); sub(/:$/, "", $1)
  for (i = 2; i < NF; i++) v[$i] = $(i + 1)
  print $1, v["job:"], v["port:"], v["tier:"], v["scrape_interval:"] }' "$CONTRACT")
[ "$svc_count" -eq 7 ] || fail "expected 7 services in the contract, read $svc_count"
ok "the $svc_count services of the contract are scraped as it says"

# ---- 3. alert metadata ------------------------------------------------------------------------
# Watchdog is the one alert with severity none: it pages no one, its arrivals are counted.
meta=$(awk '
  function flush() {
    if (alert == "") return
    if (!sev)  print FILENAME ": " alert " has no severity label (critical|warning|info; none for Watchdog only)"
    if (!sum)  print FILENAME ": " alert " has no summary annotation"
    if (!desc) print FILENAME ": " alert " has no description annotation"
    if (!rb)   print FILENAME ": " alert " has no runbook_url annotation ending in /runbooks/" alert
    alert = ""
  }
  FNR == 1 { flush() }
  /^[[:space:]]*- (alert|record|name):/ { flush(); if ($2 == "alert:") { alert = $3; sev = sum = desc = rb = 0 } }
  alert != "" && /^[[:space:]]+severity:.*(critical|warning|info)/ { sev = 1 }
  alert == "Watchdog" && /^[[:space:]]+severity:[[:space:]]*none[[:space:]]*$/ { sev = 1 }
  alert != "" && /^[[:space:]]+summary:[[:space:]]*[^[:space:]]/ { sum = 1 }
  alert != "" && /^[[:space:]]+description:[[:space:]]*[^[:space:]]/ { desc = 1 }
  alert != "" && /^[[:space:]]+runbook_url:/ && index($0, "/runbooks/" alert "\x27") + index($0, "/runbooks/" alert "\"") > 0 { rb = 1 }
  END { flush() }
' "${alert_files[@]}")
if [ -n "$meta" ]; then echo "$meta" >&2; fail "alerts with missing metadata"; else ok "every alert has severity, summary, description, runbook_url"; fi

# ---- 4. the alerts of the plan exist, each has a unit test -----------------------------------
required="ServiceDown HighCPUUsage HighMemoryUsage DiskSpaceLow HighNetworkErrors ServiceRestartLoop
HighErrorRate SlowResponseTime WebSocketDisconnected OrderExecutionBacklog HighDrawdown LowAccountBalance
HighOrderRejectionRate StrategyInactive PositionSizeLimitApproaching RiskLimitViolation LowWinRate
LowMakerRatio OrderBookStale PositionMismatch DatabaseDown ConfigurationChanged PrometheusTargetDown
LogIngestionSlow"
before=$failures
defined=$(grep -hE '^[[:space:]]*- alert:' "${alert_files[@]}" | awk '{print $3}' | sort -u)
# who watches the watcher (issue 8): the service's own health, its replicas, the dead man's switch
watcher="AlertingServiceDown AlertingReplicaDown Watchdog AlertingDeliveriesFailing AlertingDeliveryBacklogNotDraining
AlertingJournalUnavailable AlertingSlackAuthFailing AlertingNotificationsNotProcessed AlertmanagerWebhookFailing
AlertingContextSourceFailing AlertingSlackFallbackMessages"
for a in $required; do
  grep -qx "$a" <<<"$defined" || fail "alert $a (from the plan) is not defined"
done
for a in $watcher; do
  grep -qx "$a" <<<"$defined" || fail "alert $a (who watches the watcher) is not defined"
done
# per alert: a test in which it fires (exp_alerts with entries) and one in which it stays silent ([]);
# Watchdog is never silent by design
fires=$(awk '/alertname:/ { a = $2 } /exp_alerts:[[:space:]]*$/ { print a }' "${test_files[@]}" | sort -u)
silent=$(awk '/alertname:/ { a = $2 } /exp_alerts:[[:space:]]*\[\]/ { print a }' "${test_files[@]}" | sort -u)
for a in $defined; do
  grep -qx "$a" <<<"$fires" || fail "alert $a has no promtool unit test in which it fires"
  [ "$a" = Watchdog ] && continue
  grep -qx "$a" <<<"$silent" || fail "alert $a has no promtool unit test in which it stays silent (exp_alerts: [])"
done
# The dead man's switch fires always and at once, with the label alertmanager.yml routes it by.
watchdog=$(awk '/- alert:/ { cur = $3 } cur == "Watchdog"' "${alert_files[@]}")
grep -qE '^[[:space:]]+expr:[[:space:]]*vector\(1\)[[:space:]]*$' <<<"$watchdog" || fail "Watchdog is not expr: vector(1)"
grep -qE '^[[:space:]]+alert_role:[[:space:]]*watchdog[[:space:]]*$' <<<"$watchdog" || fail "Watchdog lacks the label alert_role: watchdog"
grep -qE '^[[:space:]]+for:' <<<"$watchdog" && fail "Watchdog must fire at once (no for:)"
# AlertingServiceDown needs every replica's own up: one target per replica, not a load balancer.
for target in b25-alerting-1:8080 b25-alerting-2:8080; do
  awk '/^[[:space:]]*- job_name:/ { cur = $3 } cur == "b25-alerting"' "$P/prometheus.yml" | grep -qF "'$target'" \
    || fail "job b25-alerting does not scrape the replica $target"
done
for a in HighDrawdown RiskLimitViolation; do
  awk -v a="$a" '/- alert:/ { cur = $3 } cur == a && /action:[[:space:]]*emergency-stop/ { found = 1 } END { exit !found }' "${alert_files[@]}" \
    || fail "alert $a lacks the label action: emergency-stop"
done
[ "$failures" -eq "$before" ] && ok "$(echo "$defined" | wc -l) alerts defined (all of the plan and of the watcher), each tested firing and silent (Watchdog: firing)"

# ---- 5. live: the shipped rules as Prometheus serves them ----------------------------------------
# The Watchdog fires at the first evaluation: its runbook_url must reach Alertmanager as the stable
# relative path the service turns into a link, with no address of the service among its labels.
if command -v prometheus >/dev/null && command -v curl >/dev/null; then
  tmp=$(mktemp -d)
  prom_pid=""
  cleanup() {
    if [ -n "$prom_pid" ]; then kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null; fi
    rm -rf "$tmp"
  }
  trap cleanup EXIT
  cat >"$tmp/prometheus.yml" <<EOF
global:
  evaluation_interval: 1s
rule_files: [$PWD/$P/alerts/alerting.yml]
EOF
  got=""
  for attempt in 1 2 3; do # a random port may be taken: try another
    port=$((19400 + RANDOM % 500))
    prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb$attempt" \
      --web.listen-address="127.0.0.1:$port" --web.external-url="http://127.0.0.1:$port" >"$tmp/log" 2>&1 &
    prom_pid=$!
    for _ in $(seq 1 40); do
      got=$(curl -sf "http://127.0.0.1:$port/api/v1/alerts" 2>/dev/null || true)
      echo "$got" | grep -q '"alertname":"Watchdog"' && break
      got=""
      kill -0 "$prom_pid" 2>/dev/null || break
      sleep 0.25
    done
    kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null; prom_pid=""
    [ -n "$got" ] && break
  done
  if echo "$got" | grep -q '"runbook_url":"/runbooks/Watchdog"' && ! echo "$got" | grep -q 'alerting_url'; then
    ok "live Prometheus serves the Watchdog with runbook_url /runbooks/Watchdog and no alerting_url label"
  else
    tail -5 "$tmp/log" >&2
    fail "live Prometheus served the Watchdog as '${got:-nothing}', expected runbook_url /runbooks/Watchdog and no alerting_url"
  fi
else
  echo "skip: live runbook_url check (prometheus or curl missing)"
fi

if [ "$failures" -gt 0 ]; then
  echo "10-prometheus: $failures check(s) failed" >&2
  exit 1
fi
echo "10-prometheus: all checks passed"
