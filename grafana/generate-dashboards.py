#!/usr/bin/env python3
"""Generates the B25 Grafana dashboards (grafana/dashboards/<folder>/<NN-name>.json).

Usage: python3 grafana/generate-dashboards.py           (stdlib only; rewrites every dashboard file)
       python3 grafana/generate-dashboards.py --check   (exit 1 if the committed JSON is stale)

The generated JSON is committed: Grafana provisions it as is. Edit this file, not the JSON (the
provider sets allowUiUpdates: false), then run it and `dotnet test tests/B25.Stack.Tests`, which
checks every query with promtool and against prometheus/metrics-contract.yaml.

Conventions:
  - datasources by uid: `prometheus` and `loki` (grafana/provisioning/datasources/datasources.yml);
  - every dashboard has a `service` query variable (label_values), multi-value with All = `.+`
    (Loki rejects a selector that matches the empty string, so never `.*`);
  - per-service dashboards have uid `b25-<service>`: the alerting service deep-links to
    /d/b25-<service>?var-service=<service>;
  - rates use $__rate_interval; "over the picked range" totals use $__range;
  - metric names come from prometheus/metrics-contract.yaml: latencies are *_seconds histograms,
    counters end in _total, P&L gauges use delta() not increase().
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dashboards")

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}

TRADING_SERVICES = ["market-data", "order-execution", "strategy-engine", "account-monitor",
                    "risk-manager", "config-service", "dashboard-server"]
TRADING_JOBS = "|".join(TRADING_SERVICES)
SVC = 'service=~"$service"'


# ---- building blocks ---------------------------------------------------------------------------

def q(expr, legend="", instant=False, fmt=None, ref=None, interval=None):
    """A Prometheus target."""
    t = {"datasource": PROM, "expr": expr, "legendFormat": legend or "__auto",
         "range": not instant, "instant": instant, "editorMode": "code"}
    if fmt:
        t["format"] = fmt
    if interval:
        t["interval"] = interval
    if ref:
        t["refId"] = ref
    return t


def logq(expr, ref=None):
    """A Loki target."""
    t = {"datasource": LOKI, "expr": expr, "queryType": "range", "editorMode": "code"}
    if ref:
        t["refId"] = ref
    return t


def _targets(targets):
    out = []
    for i, t in enumerate(targets):
        t = dict(t)
        t.setdefault("refId", chr(ord("A") + i))
        out.append(t)
    return out


def _ds(targets):
    kinds = {t["datasource"]["uid"] for t in targets}
    return LOKI if kinds == {"loki"} else PROM


def panel(kind, title, targets=(), w=12, h=8, unit=None, description=None, options=None,
          field=None, overrides=None, mappings=None, thresholds=None, transformations=None,
          links=None):
    targets = _targets(targets)
    p = {"type": kind, "title": title, "w": w, "h": h}
    if description:
        p["description"] = description
    if targets:
        p["datasource"] = _ds(targets)
        p["targets"] = targets
    defaults = dict(field or {})
    if unit:
        defaults["unit"] = unit
    if mappings:
        defaults["mappings"] = mappings
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
    if links:
        defaults["links"] = links
    if kind not in ("text", "logs"):
        p["fieldConfig"] = {"defaults": defaults, "overrides": overrides or []}
    p["options"] = options or {}
    if transformations:
        p["transformations"] = transformations
    return p


GREEN_RED = [{"color": "red", "value": None}, {"color": "green", "value": 1}]
UP_DOWN = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                          "1": {"text": "UP", "color": "green", "index": 1}}}]


def thresholds(*steps):
    """thresholds("green", 70, "orange", 90, "red")"""
    out = [{"color": steps[0], "value": None}]
    for i in range(1, len(steps), 2):
        out.append({"color": steps[i + 1], "value": steps[i]})
    return out


def timeseries(title, targets, unit="short", w=12, h=8, stack=False, bars=False, description=None,
               min0=True, legend_calcs=("mean", "max", "lastNotNull"), overrides=None):
    custom = {"drawStyle": "bars" if bars else "line", "lineWidth": 1, "fillOpacity": 80 if bars else 10,
              "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    field = {"custom": custom, "color": {"mode": "palette-classic"}}
    if min0:
        field["min"] = 0
    options = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                          "calcs": list(legend_calcs)},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel("timeseries", title, targets, w, h, unit, description, options, field, overrides)


def stat(title, targets, unit="short", w=6, h=4, mappings=None, steps=None, color_mode="value",
         graph=True, description=None, links=None, decimals=None):
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "colorMode": color_mode, "graphMode": "area" if graph else "none",
               "justifyMode": "auto", "textMode": "auto", "orientation": "auto"}
    field = {"color": {"mode": "thresholds"}}
    if decimals is not None:
        field["decimals"] = decimals
    return panel("stat", title, targets, w, h, unit, description, options, field, None, mappings,
                 steps or thresholds("green"), None, links)


def gauge(title, targets, unit="percent", w=6, h=6, lo=0, hi=100, steps=None, description=None):
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "showThresholdLabels": False, "showThresholdMarkers": True}
    field = {"min": lo, "max": hi, "color": {"mode": "thresholds"}}
    return panel("gauge", title, targets, w, h, unit, description, options, field, None, None,
                 steps or thresholds("green", 70, "orange", 90, "red"))


def bargauge(title, targets, unit="percentunit", w=12, h=8, lo=0, hi=1, steps=None, description=None):
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True}
    field = {"min": lo, "color": {"mode": "thresholds"}}
    if hi is not None:
        field["max"] = hi
    return panel("bargauge", title, targets, w, h, unit, description, options, field, None, None,
                 steps or thresholds("green", 0.7, "orange", 0.9, "red"))


def table(title, targets, w=12, h=8, unit=None, description=None, organize=None, merge=False,
          overrides=None, sort_by=None):
    transformations = []
    if merge:
        transformations.append({"id": "merge", "options": {}})
    if organize:
        transformations.append({"id": "organize", "options": organize})
    options = {"showHeader": True, "cellHeight": "sm",
               "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    field = {"custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True}}
    return panel("table", title, targets, w, h, unit, description, options, field, overrides,
                 None, None, transformations or None)


def heatmap(title, bucket_metric, selector, w=12, h=8, unit="s", description=None, by=""):
    expr = f"sum by (le{by}) (increase({bucket_metric}{{{selector}}}[$__rate_interval]))"
    options = {"calculate": False, "cellGap": 1, "yAxis": {"axisPlacement": "left", "unit": unit},
               "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "steps": 64,
                         "fill": "dark-orange", "reverse": False},
               "rowsFrame": {"layout": "auto"}, "tooltip": {"mode": "single", "yHistogram": True},
               "legend": {"show": True}, "exemplars": {"color": "rgba(255,0,255,0.7)"},
               "filterValues": {"le": 1e-9}}
    return panel("heatmap", title, [q(expr, "{{le}}", fmt="heatmap")], w, h, None, description,
                 options, {"custom": {"scaleDistribution": {"type": "linear"}}})


def piechart(title, targets, unit="short", w=8, h=8, description=None):
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "pieType": "donut", "displayLabels": ["name", "percent"],
               "legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                          "values": ["value", "percent"]},
               "tooltip": {"mode": "single"}}
    return panel("piechart", title, targets, w, h, unit, description, options,
                 {"color": {"mode": "palette-classic"}})


def logs(title, expr, w=24, h=10, description=None):
    options = {"showTime": True, "wrapLogMessage": True, "prettifyLogMessage": False,
               "enableLogDetails": True, "sortOrder": "Descending", "dedupStrategy": "none",
               "showLabels": False, "showCommonLabels": False}
    return panel("logs", title, [logq(expr)], w, h, None, description, options)


def text(title, content, w=24, h=3):
    return panel("text", title, (), w, h, options={"mode": "markdown", "content": content})


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "w": 24, "h": 1}


def histogram_quantiles(metric, selector, by="", quantiles=(0.5, 0.95, 0.99), legend_by=""):
    """p50/p95/p99 from a *_seconds histogram; `by` adds grouping labels (", exchange")."""
    out = []
    for qt in quantiles:
        expr = (f"histogram_quantile({qt}, sum by (le{by}) "
                f"(rate({metric}_bucket{{{selector}}}[$__rate_interval])))")
        label = f"p{round(qt * 100, 1):g}"
        out.append(q(expr, f"{legend_by} {label}".strip()))
    return out


def service_variable(query="label_values(up, service)", default=None, multi=True, all_value=".+"):
    v = {"name": "service", "label": "Service", "type": "query", "datasource": PROM,
         "query": {"query": query, "refId": "service"}, "definition": query,
         "refresh": 2, "sort": 1, "regex": "", "hide": 0,
         "multi": multi, "includeAll": multi}
    if multi:
        v["allValue"] = all_value
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    elif default:
        v["current"] = {"selected": True, "text": default, "value": default}
    return v


def query_variable(name, label, query, all_value=".+"):
    return {"name": name, "label": label, "type": "query", "datasource": PROM,
            "query": {"query": query, "refId": name}, "definition": query,
            "refresh": 2, "sort": 1, "regex": "", "hide": 0, "multi": True, "includeAll": True,
            "allValue": all_value, "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}


def layout(panels):
    """Places panels left to right, wrapping at 24 columns; rows start a new line."""
    x = y = row_h = 0
    next_id = 1
    out = []
    for p in panels:
        p = dict(p)
        w, h = p.pop("w"), p.pop("h")
        if p["type"] == "row" or x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p["id"] = next_id
        next_id += 1
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        out.append(p)
        if p["type"] == "row":
            y += h
            continue
        x += w
        row_h = max(row_h, h)
    return out


def dashboard(uid, title, tags, refresh, time_from, panels, variables=(), description=""):
    annotations = [{
        "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
        "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
        "type": "dashboard"}, {
        "name": "Firing alerts", "datasource": PROM, "enable": True, "iconColor": "red",
        "expr": f'ALERTS{{alertstate="firing", {SVC}}}', "step": "60s",
        "titleFormat": "{{alertname}}", "textFormat": "{{severity}} {{service}}",
        "useValueForTime": False}]
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["b25"] + list(tags), "timezone": "utc", "editable": False,
        "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {"refresh_intervals": ["5s", "10s", "15s", "30s", "1m", "5m", "15m"]},
        "links": [{"title": "B25 dashboards", "type": "dashboards", "tags": ["b25"], "asDropdown": True,
                   "includeVars": True, "keepTime": True, "targetBlank": False, "icon": "external link"}],
        "templating": {"list": list(variables)},
        "annotations": {"list": annotations},
        "panels": layout(panels),
    }


DASHBOARDS = {}


def register(folder, filename):
    def wrap(fn):
        DASHBOARDS[(folder, filename)] = fn
        return fn
    return wrap


# ---- shared panel sets ---------------------------------------------------------------------------

def service_dashboard_link():
    return [{"title": "Open ${__field.labels.service} dashboard",
             "url": "/d/b25-${__field.labels.service}?var-service=${__field.labels.service}&${__url_time_range}"}]


def red_panels(selector):
    """RED method for HTTP: rate, errors, duration, on any service selector."""
    return [
        timeseries("Requests per second", [q(f"sum by (service) (rate(http_requests_total{{{selector}}}[$__rate_interval]))", "{{service}}")], "reqps", w=8),
        timeseries("5xx errors per second", [q(f'sum by (service) (rate(http_requests_total{{{selector}, status=~"5.."}}[$__rate_interval]))', "{{service}}")], "reqps", w=8),
        timeseries("HTTP latency p95 / p99", [
            q(f"histogram_quantile(0.95, sum by (le, service) (rate(http_request_duration_seconds_bucket{{{selector}}}[$__rate_interval])))", "{{service}} p95"),
            q(f"histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket{{{selector}}}[$__rate_interval])))", "{{service}} p99"),
        ], "s", w=8),
    ]


def service_header(service_selector):
    """The top of every per-service dashboard: health, RED, process resources."""
    sel = service_selector
    return [
        row("Health"),
        stat("Scrape target", [q(f'min(up{{{sel}, job!~"blackbox.*"}})', "up")], mappings=UP_DOWN, steps=GREEN_RED,
             color_mode="background", graph=False, w=4),
        stat("Health probe (/health)", [q(f'min(probe_success{{job="blackbox-http", {sel}}})', "probe")],
             mappings=UP_DOWN, steps=GREEN_RED, color_mode="background", graph=False, w=4),
        stat("Requests / s", [q(f"sum(rate(http_requests_total{{{sel}}}[$__rate_interval]))")], "reqps", w=4),
        stat("5xx share", [q(f'sum(rate(http_requests_total{{{sel}, status=~"5.."}}[$__rate_interval])) / sum(rate(http_requests_total{{{sel}}}[$__rate_interval]))')],
             "percentunit", steps=thresholds("green", 0.01, "orange", 0.05, "red"), w=4, decimals=2),
        stat("Restarts (range)", [q(f"sum(changes(process_start_time_seconds{{{sel}}}[$__range]))")],
             steps=thresholds("green", 1, "orange", 3, "red"), graph=False, w=4),
        stat("Uptime", [q(f"min(time() - process_start_time_seconds{{{sel}}})")], "s", graph=False, w=4),
        row("HTTP (RED)"),
        *red_panels(sel),
        row("Process"),
        timeseries("CPU (cores)", [q(f"sum by (service, instance) (rate(process_cpu_seconds_total{{{sel}}}[$__rate_interval]))", "{{service}} {{instance}}")], "short", w=12, h=6),
        timeseries("Resident memory", [q(f"sum by (service, instance) (process_resident_memory_bytes{{{sel}}})", "{{service}} {{instance}}")], "bytes", w=12, h=6),
    ]


def service_logs(loki_selector="service_name=~\"$service\""):
    return [
        row("Logs (Loki)"),
        logs("Warnings and errors", f'{{{loki_selector}, level=~"warn|error|fatal"}}', h=8,
             description="Promtail labels: service_name = compose service, level = normalised level."),
        logs("All log lines", f"{{{loki_selector}}}", h=10),
    ]


# ---- System Health -------------------------------------------------------------------------------

@register("System Health", "01-system-health-overview.json")
def overview():
    panels = [
        row("Service status"),
        stat("Service status", [q(f'up{{job=~"{TRADING_JOBS}", {SVC}}}', "{{job}}", instant=True)],
             mappings=UP_DOWN, steps=GREEN_RED, color_mode="background", graph=False, w=24, h=4,
             links=service_dashboard_link(),
             description="One tile per B25 service: UP when Prometheus' last scrape succeeded. Click a tile for its dashboard."),
        row("Traffic"),
        timeseries("Request rate (req/s)", [q(f"sum by (service) (rate(http_requests_total{{{SVC}}}[$__rate_interval]))", "{{service}}")], "reqps"),
        timeseries("Error rate (5xx/s)", [q(f'sum by (service) (rate(http_requests_total{{{SVC}, status=~"5.."}}[$__rate_interval]))', "{{service}}")], "reqps"),
        heatmap("Request latency distribution", "http_request_duration_seconds_bucket", SVC, w=12,
                description="All requests of the selected services, by duration bucket."),
        timeseries("P95 latency per service", [q(f"service:http_request_duration_seconds:p95_5m{{{SVC}}}", "{{service}}")], "s",
                   description="Recorded by prometheus/rules (5m window)."),
        row("Alerts and resources"),
        table("Active alerts", [q('ALERTS{alertstate="firing"}', instant=True, fmt="table")], w=12, h=8,
              organize={"excludeByName": {"Time": True, "Value": True, "__name__": True, "alertstate": True},
                        "indexByName": {"alertname": 0, "severity": 1, "service": 2}}),
        gauge("CPU", [q("max(instance:node_cpu_utilisation:percent)")], w=3, h=8),
        gauge("Memory", [q("max(instance:node_memory_utilisation:percent)")], w=3, h=8),
        gauge("Disk /", [q('max((1 - node_filesystem_avail_bytes{mountpoint="/"} / node_filesystem_size_bytes{mountpoint="/"}) * 100)')], w=3, h=8),
        stat("Network", [q('sum(rate(node_network_receive_bytes_total{device!="lo"}[$__rate_interval]) + rate(node_network_transmit_bytes_total{device!="lo"}[$__rate_interval]))')],
             "Bps", w=3, h=8),
        *service_logs()[:2],
    ]
    return dashboard("b25-system-health-overview", "01 System Health Overview", ["health", "overview"],
                     "15s", "now-1h", panels, [service_variable()],
                     "Health of every B25 service at a glance (plan 4.3 / 5.1).")


@register("System Health", "02-infrastructure.json")
def infrastructure():
    compose_service = "container_label_com_docker_compose_service"
    panels = [
        row("Host (node-exporter)"),
        timeseries("CPU busy", [q("instance:node_cpu_utilisation:percent", "{{instance}}")], "percent", w=8),
        timeseries("Memory used", [q("instance:node_memory_utilisation:percent", "{{instance}}")], "percent", w=8),
        timeseries("Load (1m)", [q("node_load1", "{{instance}}")], w=8),
        timeseries("CPU by mode", [q('sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[$__rate_interval]))', "{{mode}}")], "short", stack=True, w=8),
        bargauge("Disk used per mount point", [q('1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"}', "{{mountpoint}}")], w=8),
        timeseries("Network traffic", [
            q('sum by (device) (rate(node_network_receive_bytes_total{device!="lo"}[$__rate_interval]))', "{{device}} rx"),
            q('-sum by (device) (rate(node_network_transmit_bytes_total{device!="lo"}[$__rate_interval]))', "{{device}} tx"),
        ], "Bps", w=8, min0=False),
        timeseries("Network errors", [
            q("sum by (device) (rate(node_network_receive_errs_total[$__rate_interval]))", "{{device}} rx errors"),
            q("sum by (device) (rate(node_network_transmit_errs_total[$__rate_interval]))", "{{device}} tx errors"),
        ], "short", w=12),
        row("Containers (cAdvisor)"),
        timeseries("Container CPU (cores)", [q(f'sum by ({compose_service}) (rate(container_cpu_usage_seconds_total{{{compose_service}!=""}}[$__rate_interval]))', f"{{{{{compose_service}}}}}")], "short", w=12),
        timeseries("Container memory (working set)", [q(f'sum by ({compose_service}) (container_memory_working_set_bytes{{{compose_service}!=""}})', f"{{{{{compose_service}}}}}")], "bytes", w=12),
        table("Container restarts (range)", [q(f'sum by ({compose_service}) (changes(container_start_time_seconds{{{compose_service}!=""}}[$__range]))', instant=True, fmt="table")], w=12,
              organize={"excludeByName": {"Time": True}, "renameByName": {"Value": "restarts", compose_service: "compose service"}}),
        row("B25 service processes"),
        timeseries("Process CPU per service (cores)", [q(f"sum by (service) (rate(process_cpu_seconds_total{{{SVC}}}[$__rate_interval]))", "{{service}}")], "short", w=12),
        timeseries("Process memory per service", [q(f"sum by (service) (process_resident_memory_bytes{{{SVC}}})", "{{service}}")], "bytes", w=12),
        row("Monitoring itself"),
        timeseries("Prometheus head series", [q("prometheus_tsdb_head_series", "series")], w=8),
        timeseries("Prometheus symbol table size", [q("prometheus_tsdb_symbol_table_size_bytes", "bytes")], "bytes", w=8),
        timeseries("Promtail entries sent / dropped", [
            q("sum(rate(promtail_sent_entries_total[$__rate_interval]))", "sent/s"),
            q("sum(rate(promtail_dropped_entries_total[$__rate_interval]))", "dropped/s"),
            q("sum(rate(promtail_batch_retries_total[$__rate_interval]))", "batch retries/s"),
        ], w=8),
    ]
    return dashboard("b25-infrastructure", "02 Infrastructure Metrics", ["health", "infrastructure"],
                     "30s", "now-6h", panels, [service_variable()],
                     "Host CPU, memory, disk and network; containers; the monitoring stack itself.")


@register("System Health", "03-service-discovery.json")
def service_discovery():
    panels = [
        row("Scrape targets"),
        stat("Targets up", [q(f"count(up{{{SVC}}} == 1)")], steps=thresholds("green"), graph=False, w=6),
        stat("Targets down", [q(f"count(up{{{SVC}}} == 0) or vector(0)")], steps=thresholds("green", 1, "red"), graph=False, w=6),
        stat("Probes failing", [q(f"count(probe_success{{{SVC}}} == 0) or vector(0)")], steps=thresholds("green", 1, "red"), graph=False, w=6),
        stat("Slowest scrape", [q(f"max(scrape_duration_seconds{{{SVC}}})")], "s", steps=thresholds("green", 1, "orange", 4, "red"), w=6),
        table("Target status", [q(f"up{{{SVC}}}", instant=True, fmt="table")], w=12, h=10,
              organize={"excludeByName": {"Time": True, "__name__": True}, "renameByName": {"Value": "up"}},
              overrides=[{"matcher": {"id": "byName", "options": "up"},
                          "properties": [{"id": "mappings", "value": UP_DOWN},
                                         {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]),
        table("Blackbox probes", [
            q(f"probe_success{{{SVC}}}", instant=True, fmt="table", ref="A"),
            q(f"probe_duration_seconds{{{SVC}}}", instant=True, fmt="table", ref="B"),
            q(f"probe_http_status_code{{{SVC}}}", instant=True, fmt="table", ref="C"),
        ], w=12, h=10, merge=True,
            organize={"excludeByName": {"Time": True}, "renameByName": {"Value #A": "success", "Value #B": "duration (s)", "Value #C": "HTTP status"}}),
        timeseries("Scrape duration per job", [q(f"max by (job) (scrape_duration_seconds{{{SVC}}})", "{{job}}")], "s"),
        timeseries("Probe duration", [q(f"probe_duration_seconds{{{SVC}}}", "{{job}} {{instance}}")], "s"),
        timeseries("Targets up over time", [q(f"sum by (job) (up{{{SVC}}})", "{{job}}")], w=24, stack=True),
    ]
    return dashboard("b25-service-discovery", "03 Service Discovery", ["health", "targets"],
                     "15s", "now-1h", panels, [service_variable()],
                     "What Prometheus scrapes and probes, and whether it succeeds.")


# ---- Performance ---------------------------------------------------------------------------------

@register("Performance", "10-latency.json")
def latency():
    panels = [
        row("Trading paths"),
        timeseries("Order-to-fill latency", histogram_quantiles("order_execution_latency_seconds", SVC, quantiles=(0.5, 0.95, 0.99, 0.999)), "s",
                   description="Submission to first fill. A histogram has no true max: p99.9 stands in for the plan's max()."),
        timeseries("Order submission latency (to exchange ack)", histogram_quantiles("order_execution_submission_latency_seconds", SVC), "s"),
        timeseries("WebSocket latency p95 per exchange", [q(f"histogram_quantile(0.95, sum by (le, exchange) (rate(market_data_websocket_latency_seconds_bucket{{{SVC}}}[$__rate_interval])))", "{{exchange}}")], "s"),
        timeseries("Market-data message latency p99 per exchange", [q(f"histogram_quantile(0.99, sum by (le, exchange) (rate(market_data_message_latency_seconds_bucket{{{SVC}}}[$__rate_interval])))", "{{exchange}}")], "s"),
        timeseries("Signal-to-order latency p99 per strategy", [q(f"histogram_quantile(0.99, sum by (le, strategy_id) (rate(strategy_engine_signal_to_order_latency_seconds_bucket{{{SVC}}}[$__rate_interval])))", "{{strategy_id}}")], "s"),
        heatmap("Order-to-fill latency distribution", "order_execution_latency_seconds_bucket", SVC),
        row("HTTP"),
        timeseries("HTTP p50 per service", [q(f"histogram_quantile(0.5, sum by (le, service) (rate(http_request_duration_seconds_bucket{{{SVC}}}[$__rate_interval])))", "{{service}}")], "s", w=8),
        timeseries("HTTP p95 per service", [q(f"service:http_request_duration_seconds:p95_5m{{{SVC}}}", "{{service}}")], "s", w=8),
        timeseries("HTTP p99 per service", [q(f"service:http_request_duration_seconds:p99_5m{{{SVC}}}", "{{service}}")], "s", w=8),
    ]
    return dashboard("b25-latency", "10 Latency", ["performance", "latency"], "10s", "now-15m",
                     panels, [service_variable()], "p50, p95, p99 of every latency histogram (plan 5.2).")


@register("Performance", "11-throughput.json")
def throughput():
    panels = [
        row("Trading flow"),
        stat("Orders / s", [q(f"sum(rate(order_execution_submitted_orders_total{{{SVC}}}[$__rate_interval]))")], "short", w=6),
        stat("Fills / s", [q(f"sum(rate(order_execution_filled_orders_total{{{SVC}}}[$__rate_interval]))")], "short", w=6),
        stat("Signals / s", [q(f"sum(rate(strategy_engine_signals_generated_total{{{SVC}}}[$__rate_interval]))")], "short", w=6),
        stat("Market-data messages / s", [q(f"sum(rate(market_data_messages_processed_total{{{SVC}}}[$__rate_interval]))")], "short", w=6),
        timeseries("Orders, fills and signals per second", [
            q(f"sum(rate(order_execution_submitted_orders_total{{{SVC}}}[$__rate_interval]))", "orders/s"),
            q(f"sum(rate(order_execution_filled_orders_total{{{SVC}}}[$__rate_interval]))", "fills/s"),
            q(f"sum(rate(strategy_engine_signals_generated_total{{{SVC}}}[$__rate_interval]))", "signals/s"),
        ]),
        timeseries("Market-data messages per second by channel", [q(f"sum by (channel) (rate(market_data_messages_processed_total{{{SVC}}}[$__rate_interval]))", "{{channel}}")], stack=True),
        timeseries("Orders by status per second", [q(f"sum by (status) (rate(order_execution_orders_total{{{SVC}}}[$__rate_interval]))", "{{status}}")], stack=True),
        timeseries("Filled volume (USD per hour)", [q(f"sum by (exchange) (increase(order_execution_volume_usd_total{{{SVC}}}[1h]))", "{{exchange}}")], "currencyUSD"),
        row("HTTP and push"),
        timeseries("HTTP requests per second per service", [q(f"sum by (service) (service:http_requests:rate5m{{{SVC}}})", "{{service}}")], "reqps"),
        timeseries("Dashboard-server WebSocket messages per second", [q(f"sum by (channel) (rate(dashboard_server_websocket_messages_sent_total{{{SVC}}}[$__rate_interval]))", "{{channel}}")]),
    ]
    return dashboard("b25-throughput", "11 Throughput", ["performance", "throughput"], "10s", "now-15m",
                     panels, [service_variable()], "Requests, messages, orders, fills and signals per second.")


@register("Performance", "12-error-rates.json")
def error_rates():
    panels = [
        row("HTTP"),
        timeseries("5xx per second per service", [q(f'sum by (service) (rate(http_requests_total{{{SVC}, status=~"5.."}}[$__rate_interval]))', "{{service}}")], "reqps", w=8),
        timeseries("4xx per second per service", [q(f'sum by (service) (rate(http_requests_total{{{SVC}, status=~"4.."}}[$__rate_interval]))', "{{service}}")], "reqps", w=8),
        timeseries("5xx share of requests (5m)", [q(f"service:http_request_error_ratio:rate5m{{{SVC}}}", "{{service}}")], "percentunit", w=8),
        row("Trading failures"),
        timeseries("Order rejection share per exchange (5m)", [q(f"exchange:order_execution_rejection_ratio:rate5m{{{SVC}}}", "{{exchange}}")], "percentunit", w=8),
        timeseries("Rejected orders per second", [q(f'sum by (exchange) (rate(order_execution_orders_total{{{SVC}, status="rejected"}}[$__rate_interval]))', "{{exchange}}")], w=8),
        timeseries("Rate-limited orders per second", [q(f"sum by (exchange) (rate(order_execution_rate_limited_total{{{SVC}}}[$__rate_interval]))", "{{exchange}}")], w=8),
        timeseries("Market-data gaps per second", [q(f"sum by (exchange, symbol) (rate(market_data_gaps_detected_total{{{SVC}}}[$__rate_interval]))", "{{exchange}} {{symbol}}")], w=8),
        timeseries("WebSocket reconnections (per 5m)", [q(f"sum by (exchange) (increase(market_data_reconnections_total{{{SVC}}}[5m]))", "{{exchange}}")], w=8),
        timeseries("Risk limit violations (per 5m)", [q(f"sum by (limit_type) (increase(risk_manager_limit_violations_total{{{SVC}}}[5m]))", "{{limit_type}}")], w=8),
        *service_logs()[:2],
    ]
    return dashboard("b25-error-rates", "12 Error Rates", ["performance", "errors"], "10s", "now-15m",
                     panels, [service_variable()], "4xx, 5xx and trading failures, next to the error logs.")


# ---- Business Metrics ----------------------------------------------------------------------------

EXCH = 'exchange=~"$exchange"'
SYM = 'symbol=~"$symbol"'


def business_variables():
    return [service_variable(),
            query_variable("exchange", "Exchange", "label_values(account_monitor_balance_usd, exchange)"),
            query_variable("symbol", "Symbol", "label_values(account_monitor_position_size, symbol)")]


@register("Business Metrics", "20-pnl.json")
def pnl():
    panels = [
        row("P&L"),
        stat("Total P&L", [q(f"sum(account_monitor_realized_pnl_usd{{{EXCH}}}) + sum(account_monitor_unrealized_pnl_usd{{{EXCH}}})")], "currencyUSD",
             steps=thresholds("red", 0, "green"), w=6),
        stat("Realized P&L (range)", [q(f"sum(delta(account_monitor_realized_pnl_usd{{{EXCH}}}[$__range]))")], "currencyUSD", steps=thresholds("red", 0, "green"), w=6,
             description="Realized P&L is a gauge that can fall: delta(), not increase()."),
        stat("Sharpe ratio", [q("account_monitor_sharpe_ratio")], "none", steps=thresholds("red", 0, "orange", 1, "green"), w=6, decimals=2),
        gauge("Win rate (1h)", [q("account:win_ratio:increase1h * 100")], w=6, h=4,
              steps=thresholds("red", 40, "orange", 50, "green")),
        timeseries("Cumulative P&L", [
            q(f"sum(account_monitor_realized_pnl_usd{{{EXCH}}}) + sum(account_monitor_unrealized_pnl_usd{{{EXCH}}})", "total"),
            q(f"sum(account_monitor_realized_pnl_usd{{{EXCH}}})", "realized"),
            q(f"sum(account_monitor_unrealized_pnl_usd{{{EXCH}}})", "unrealized"),
        ], "currencyUSD", min0=False,
            description="Summed separately: realized has an exchange label, unrealized exchange and symbol, so a plain `a + b` matches nothing."),
        timeseries("Daily realized P&L", [q(f"sum(delta(account_monitor_realized_pnl_usd{{{EXCH}}}[1d]))", "P&L per day", interval="1d")],
                   "currencyUSD", bars=True, min0=False),
        gauge("Drawdown (current / max)", [q("account_monitor_drawdown_pct", "current"), q("account_monitor_max_drawdown_pct", "max")],
              w=8, steps=thresholds("green", 5, "orange", 10, "red")),
        timeseries("Trading volume (USD per hour)", [q(f"sum(increase(order_execution_volume_usd_total{{{EXCH}, {SYM}}}[1h]))", "volume")], "currencyUSD", w=8),
        piechart("Fees: maker vs taker (range)", [q(f"sum by (liquidity) (increase(account_monitor_fees_paid_usd_total{{{EXCH}}}[$__range]))", "{{liquidity}}")], "currencyUSD"),
        row("Positions"),
        table("Open positions", [
            q(f"sum by (exchange, symbol) (account_monitor_position_size{{{EXCH}, {SYM}}})", instant=True, fmt="table", ref="A"),
            q(f"sum by (exchange, symbol) (account_monitor_position_entry_price{{{EXCH}, {SYM}}})", instant=True, fmt="table", ref="B"),
            q(f"sum by (exchange, symbol) (account_monitor_unrealized_pnl_usd{{{EXCH}, {SYM}}})", instant=True, fmt="table", ref="C"),
        ], w=24, merge=True,
            organize={"excludeByName": {"Time": True},
                      "renameByName": {"Value #A": "size", "Value #B": "entry price", "Value #C": "unrealized P&L (USD)"}}),
    ]
    return dashboard("b25-pnl", "20 P&L", ["business", "pnl"], "30s", "now-24h", panels,
                     business_variables(), "Realized, unrealized and cumulative P&L (plan 4.3 / 5.3).")


@register("Business Metrics", "21-trading-activity.json")
def trading_activity():
    panels = [
        row("Orders and fills"),
        stat("Orders submitted (range)", [q(f"sum(increase(order_execution_submitted_orders_total{{{EXCH}, {SYM}}}[$__range]))")], w=6, decimals=0),
        stat("Orders filled (range)", [q(f"sum(increase(order_execution_filled_orders_total{{{EXCH}, {SYM}}}[$__range]))")], w=6, decimals=0),
        stat("Volume (range)", [q(f"sum(increase(order_execution_volume_usd_total{{{EXCH}, {SYM}}}[$__range]))")], "currencyUSD", w=6),
        stat("Trades closed (range)", [q(f"sum(increase(account_monitor_trades_total{{{EXCH}, {SYM}}}[$__range]))")], w=6, decimals=0),
        piechart("Orders by status (range)", [q(f"sum by (status) (increase(order_execution_orders_total{{{EXCH}, {SYM}}}[$__range]))", "{{status}}")]),
        piechart("Orders by type (range)", [q(f"sum by (order_type) (increase(order_execution_submitted_orders_total{{{EXCH}, {SYM}}}[$__range]))", "{{order_type}}")]),
        piechart("Volume by side (range)", [q(f"sum by (side) (increase(order_execution_volume_usd_total{{{EXCH}, {SYM}}}[$__range]))", "{{side}}")], "currencyUSD"),
        timeseries("Orders and fills per minute", [
            q(f"sum(rate(order_execution_submitted_orders_total{{{EXCH}, {SYM}}}[$__rate_interval])) * 60", "submitted"),
            q(f"sum(rate(order_execution_filled_orders_total{{{EXCH}, {SYM}}}[$__rate_interval])) * 60", "filled"),
        ]),
        timeseries("Volume per symbol (USD per hour)", [q(f"sum by (symbol) (increase(order_execution_volume_usd_total{{{EXCH}, {SYM}}}[1h]))", "{{symbol}}")], "currencyUSD", stack=True),
        row("Positions and signals"),
        timeseries("Position size per symbol", [q(f"sum by (exchange, symbol) (account_monitor_position_size{{{EXCH}, {SYM}}})", "{{exchange}} {{symbol}}")], min0=False),
        timeseries("Signals per minute by side", [q(f"sum by (side) (rate(strategy_engine_signals_generated_total{{{SYM}}}[$__rate_interval])) * 60", "{{side}}")], stack=True),
    ]
    return dashboard("b25-trading-activity", "21 Trading Activity", ["business", "trading"], "30s", "now-24h",
                     panels, business_variables(), "Orders, fills, volume and positions.")


@register("Business Metrics", "22-strategy-performance.json")
def strategy_performance():
    strat = 'strategy_id=~"$strategy"'
    panels = [
        text("About this dashboard",
             "The metrics contract has no per-strategy P&L or win rate yet (account-monitor reports per "
             "exchange and symbol). Until strategy-level metrics exist, this dashboard shows what each "
             "strategy does (signals, latency) next to the account-level results."),
        row("Strategies"),
        stat("Active strategies", [q("sum(strategy_engine_active_strategies)")], w=6, decimals=0),
        stat("Signals (range)", [q(f"sum(increase(strategy_engine_signals_generated_total{{{strat}}}[$__range]))")], w=6, decimals=0),
        gauge("Account win rate (1h)", [q("account:win_ratio:increase1h * 100")], w=6, h=4, steps=thresholds("red", 40, "orange", 50, "green")),
        stat("Account P&L (range)", [q("sum(delta(account_monitor_realized_pnl_usd[$__range]))")], "currencyUSD", steps=thresholds("red", 0, "green"), w=6),
        timeseries("Signals per minute per strategy", [q(f"sum by (strategy_id) (rate(strategy_engine_signals_generated_total{{{strat}}}[$__rate_interval])) * 60", "{{strategy_id}}")], stack=True),
        bargauge("Signal mix per strategy (range)", [q(f"sum by (strategy_id, side) (increase(strategy_engine_signals_generated_total{{{strat}}}[$__range]))", "{{strategy_id}} {{side}}")],
                 "short", lo=0, hi=None, steps=thresholds("blue")),
        timeseries("Signal-to-order latency p99 per strategy", [q(f"histogram_quantile(0.99, sum by (le, strategy_id) (rate(strategy_engine_signal_to_order_latency_seconds_bucket{{{strat}}}[$__rate_interval])))", "{{strategy_id}}")], "s"),
        table("Signals per strategy and symbol (range)", [q(f"sum by (strategy_id, symbol) (increase(strategy_engine_signals_generated_total{{{strat}}}[$__range]))", instant=True, fmt="table")],
              organize={"excludeByName": {"Time": True}, "renameByName": {"Value": "signals"}}, sort_by="signals"),
    ]
    variables = [service_variable(),
                 query_variable("strategy", "Strategy", "label_values(strategy_engine_signals_generated_total, strategy_id)")]
    return dashboard("b25-strategy-performance", "22 Strategy Performance", ["business", "strategy"], "30s", "now-24h",
                     panels, variables, "Per-strategy activity; per-strategy P&L awaits its metrics.")


@register("Business Metrics", "23-fee-analysis.json")
def fee_analysis():
    panels = [
        row("Fees"),
        stat("Fees paid (range)", [q(f"sum(increase(account_monitor_fees_paid_usd_total{{{EXCH}}}[$__range]))")], "currencyUSD", w=6),
        stat("Fees / volume (range)", [q(f"sum(increase(account_monitor_fees_paid_usd_total{{{EXCH}}}[$__range])) / sum(increase(order_execution_volume_usd_total{{{EXCH}}}[$__range]))")],
             "percentunit", w=6, decimals=4, description="Effective fee rate on filled volume."),
        gauge("Maker share of orders (1h)", [q("account:maker_ratio:increase1h * 100")], w=6, h=4, steps=thresholds("red", 30, "orange", 50, "green")),
        stat("Maker share of orders (range)", [q(f"sum(increase(account_monitor_maker_orders_total{{{EXCH}}}[$__range])) / sum(increase(account_monitor_orders_total{{{EXCH}}}[$__range]))")],
             "percentunit", w=6, decimals=1),
        piechart("Maker vs taker fees (range)", [q(f"sum by (liquidity) (increase(account_monitor_fees_paid_usd_total{{{EXCH}}}[$__range]))", "{{liquidity}}")], "currencyUSD"),
        piechart("Fees per exchange (range)", [q(f"sum by (exchange) (increase(account_monitor_fees_paid_usd_total{{{EXCH}}}[$__range]))", "{{exchange}}")], "currencyUSD"),
        table("Fees by exchange and liquidity (range)", [q(f"sum by (exchange, liquidity) (increase(account_monitor_fees_paid_usd_total{{{EXCH}}}[$__range]))", instant=True, fmt="table")],
              w=8, unit="currencyUSD", organize={"excludeByName": {"Time": True}, "renameByName": {"Value": "fees (USD)"}}),
        timeseries("Fees per hour by liquidity", [q(f"sum by (liquidity) (increase(account_monitor_fees_paid_usd_total{{{EXCH}}}[1h]))", "{{liquidity}}")], "currencyUSD", stack=True),
        timeseries("Effective fee rate (1h)", [q(f"sum(increase(account_monitor_fees_paid_usd_total{{{EXCH}}}[1h])) / sum(increase(order_execution_volume_usd_total{{{EXCH}}}[1h]))", "fees / volume")], "percentunit"),
    ]
    return dashboard("b25-fee-analysis", "23 Fee Analysis", ["business", "fees"], "30s", "now-24h",
                     panels, business_variables(), "Maker vs taker, fee cost and effective fee rate.")


# ---- Service Dashboards --------------------------------------------------------------------------

def per_service(number, service, title, refresh, body, description, variables_extra=()):
    panels = service_header(SVC) + body + service_logs()
    variables = [service_variable(f'label_values(up{{service="{service}"}}, service)', service, multi=False), *variables_extra]
    return dashboard(f"b25-{service}", f"{number} {title}", ["service", service], refresh, "now-1h",
                     panels, variables, description)


@register("Service Dashboards", "30-market-data.json")
def market_data():
    body = [
        row("Feeds"),
        stat("Exchanges connected", [q(f"sum(market_data_websocket_connected{{{SVC}}})")], w=6, decimals=0,
             steps=thresholds("red", 1, "green")),
        stat("Oldest order book (s since update)", [q(f"max(time() - market_data_orderbook_last_update_timestamp_seconds{{{SVC}}})")], "s",
             steps=thresholds("green", 5, "orange", 30, "red"), w=6),
        stat("Gaps (range)", [q(f"sum(increase(market_data_gaps_detected_total{{{SVC}}}[$__range]))")], w=6, decimals=0, steps=thresholds("green", 1, "orange")),
        stat("Reconnections (range)", [q(f"sum(increase(market_data_reconnections_total{{{SVC}}}[$__range]))")], w=6, decimals=0, steps=thresholds("green", 1, "orange")),
        timeseries("WebSocket connected per exchange", [q(f"market_data_websocket_connected{{{SVC}}}", "{{exchange}}")], w=12),
        timeseries("Order book depth (levels)", [
            q(f'sum by (symbol) (market_data_orderbook_depth_levels{{{SVC}, side="bid"}})', "{{symbol}} bid"),
            q(f'sum by (symbol) (market_data_orderbook_depth_levels{{{SVC}, side="ask"}})', "{{symbol}} ask"),
        ], w=12),
        heatmap("Message latency distribution", "market_data_message_latency_seconds_bucket", SVC),
        timeseries("Message latency p99 per exchange", [q(f"histogram_quantile(0.99, sum by (le, exchange) (rate(market_data_message_latency_seconds_bucket{{{SVC}}}[$__rate_interval])))", "{{exchange}}")], "s"),
        timeseries("WebSocket latency p95 per exchange", [q(f"histogram_quantile(0.95, sum by (le, exchange) (rate(market_data_websocket_latency_seconds_bucket{{{SVC}}}[$__rate_interval])))", "{{exchange}}")], "s", w=8),
        timeseries("Messages processed per second", [q(f"sum by (channel) (rate(market_data_messages_processed_total{{{SVC}}}[$__rate_interval]))", "{{channel}}")], stack=True, w=8),
        timeseries("Reconnections and gaps (per 5m)", [
            q(f"sum by (exchange) (increase(market_data_reconnections_total{{{SVC}}}[5m]))", "{{exchange}} reconnections"),
            q(f"sum by (exchange) (increase(market_data_gaps_detected_total{{{SVC}}}[5m]))", "{{exchange}} gaps"),
        ], w=8),
    ]
    return per_service("30", "market-data", "Market Data Service", "5s", body,
                       "Exchange feeds: connections, order books, latency, gaps (plan 4.3 / 5.4).")


@register("Service Dashboards", "31-order-execution.json")
def order_execution():
    breaker = [{"type": "value", "options": {"0": {"text": "CLOSED", "color": "green", "index": 0},
                                              "1": {"text": "OPEN", "color": "red", "index": 1},
                                              "2": {"text": "HALF-OPEN", "color": "orange", "index": 2}}}]
    body = [
        row("Orders"),
        stat("Circuit breaker", [q(f"order_execution_circuit_breaker_state{{{SVC}}}", "{{exchange}}")], mappings=breaker,
             steps=thresholds("green", 1, "red", 2, "orange"), color_mode="background", graph=False, w=8),
        gauge("Fill rate (range)", [q(f"sum(increase(order_execution_filled_orders_total{{{SVC}}}[$__range])) / sum(increase(order_execution_submitted_orders_total{{{SVC}}}[$__range])) * 100")],
              w=4, h=4, steps=thresholds("red", 50, "orange", 80, "green")),
        stat("Queue depth", [q(f"sum(order_execution_queue_depth{{{SVC}}})")], w=4, steps=thresholds("green", 50, "orange", 200, "red")),
        stat("Rate-limited (range)", [q(f"sum(increase(order_execution_rate_limited_total{{{SVC}}}[$__range]))")], w=4, decimals=0, steps=thresholds("green", 1, "orange")),
        stat("Rejection share (5m)", [q(f"max(exchange:order_execution_rejection_ratio:rate5m{{{SVC}}})")], "percentunit", w=4,
             steps=thresholds("green", 0.02, "orange", 0.05, "red")),
        piechart("Order status breakdown (range)", [q(f"sum by (status) (increase(order_execution_orders_total{{{SVC}}}[$__range]))", "{{status}}")]),
        timeseries("Submission latency (to exchange ack)", histogram_quantiles("order_execution_submission_latency_seconds", SVC), "s", w=8),
        timeseries("Order-to-fill latency", histogram_quantiles("order_execution_latency_seconds", SVC), "s", w=8),
        timeseries("Orders submitted per second by type", [q(f"sum by (order_type) (rate(order_execution_submitted_orders_total{{{SVC}}}[$__rate_interval]))", "{{order_type}}")], stack=True, w=8),
        timeseries("Rate limiter hits per second", [q(f"sum by (exchange) (rate(order_execution_rate_limited_total{{{SVC}}}[$__rate_interval]))", "{{exchange}}")], w=8),
        timeseries("Maker share of filled orders (1h)", [q("account:maker_ratio:increase1h", "maker share")], "percentunit", w=8,
                   description="From account-monitor (liquidity is known once a fill is reported)."),
        timeseries("Queue depth", [q(f"sum(order_execution_queue_depth{{{SVC}}})", "queued")], w=8),
    ]
    return per_service("31", "order-execution", "Order Execution Service", "5s", body,
                       "Order flow, latency, circuit breakers and rate limits (plan 4.3).")


@register("Service Dashboards", "32-strategy-engine.json")
def strategy_engine():
    body = [
        row("Strategies"),
        stat("Active strategies", [q(f"sum(strategy_engine_active_strategies{{{SVC}}})")], w=8, decimals=0, steps=thresholds("red", 1, "green")),
        stat("Signals / min", [q(f"sum(rate(strategy_engine_signals_generated_total{{{SVC}}}[$__rate_interval])) * 60")], w=8),
        stat("Signal-to-order p99", [q(f"histogram_quantile(0.99, sum by (le) (rate(strategy_engine_signal_to_order_latency_seconds_bucket{{{SVC}}}[$__rate_interval])))")], "s", w=8,
             steps=thresholds("green", 0.01, "orange", 0.05, "red")),
        timeseries("Signals per minute per strategy", [q(f"sum by (strategy_id) (rate(strategy_engine_signals_generated_total{{{SVC}}}[$__rate_interval])) * 60", "{{strategy_id}}")], stack=True),
        timeseries("Signal-to-order latency p99 per strategy", [q(f"histogram_quantile(0.99, sum by (le, strategy_id) (rate(strategy_engine_signal_to_order_latency_seconds_bucket{{{SVC}}}[$__rate_interval])))", "{{strategy_id}}")], "s"),
        heatmap("Signal-to-order latency distribution", "strategy_engine_signal_to_order_latency_seconds_bucket", SVC, w=24),
    ]
    return per_service("32", "strategy-engine", "Strategy Engine Service", "10s", body,
                       "Signals and decision latency per strategy.")


@register("Service Dashboards", "33-account-monitor.json")
def account_monitor():
    body = [
        row("Account"),
        stat("Equity", [q(f"sum(account_monitor_balance_usd{{{SVC}}})")], "currencyUSD", w=6),
        gauge("Margin ratio (max)", [q(f"max(account_monitor_margin_ratio{{{SVC}}}) * 100")], w=6, h=4, steps=thresholds("green", 50, "orange", 80, "red")),
        gauge("Drawdown", [q(f"max(account_monitor_drawdown_pct{{{SVC}}})")], w=6, h=4, steps=thresholds("green", 5, "orange", 10, "red")),
        stat("Position mismatches", [q(f"count(abs(account_monitor_position_size{{{SVC}}} - account_monitor_exchange_position_size{{{SVC}}}) > 0) or vector(0)")],
             w=6, decimals=0, steps=thresholds("green", 1, "red"), description="Symbols whose local position differs from the exchange's."),
        timeseries("Equity per exchange", [q(f"account_monitor_balance_usd{{{SVC}}}", "{{exchange}}")], "currencyUSD", min0=False),
        timeseries("Realized and unrealized P&L", [
            q(f"sum by (exchange) (account_monitor_realized_pnl_usd{{{SVC}}})", "{{exchange}} realized"),
            q(f"sum by (exchange) (account_monitor_unrealized_pnl_usd{{{SVC}}})", "{{exchange}} unrealized"),
        ], "currencyUSD", min0=False),
        bargauge("Position vs limit", [q(f"abs(account_monitor_position_size{{{SVC}}}) / account_monitor_position_limit{{{SVC}}}", "{{exchange}} {{symbol}}")]),
        timeseries("Local minus exchange position", [q(f"account_monitor_position_size{{{SVC}}} - account_monitor_exchange_position_size{{{SVC}}}", "{{exchange}} {{symbol}}")], min0=False),
        timeseries("Margin ratio per exchange", [q(f"account_monitor_margin_ratio{{{SVC}}}", "{{exchange}}")], "percentunit"),
        timeseries("Trades closed per hour", [
            q(f"sum(increase(account_monitor_trades_total{{{SVC}}}[1h]))", "trades"),
            q(f"sum(increase(account_monitor_winning_trades_total{{{SVC}}}[1h]))", "winning"),
        ]),
    ]
    return per_service("33", "account-monitor", "Account Monitor Service", "10s", body,
                       "Balances, margin, positions and reconciliation with the exchange.")


@register("Service Dashboards", "34-risk-manager.json")
def risk_manager():
    body = [
        row("Limits"),
        bargauge("Limit utilisation", [q(f"max by (limit_type) (risk_manager_limit_utilization_ratio{{{SVC}}})", "{{limit_type}}")], w=12, h=8),
        stat("Violations (range)", [q(f"sum(increase(risk_manager_limit_violations_total{{{SVC}}}[$__range]))")], w=6, h=8, decimals=0, steps=thresholds("green", 1, "red")),
        stat("Emergency stops (range)", [q(f"sum(increase(risk_manager_emergency_stops_total{{{SVC}}}[$__range]))")], w=6, h=8, decimals=0, steps=thresholds("green", 1, "red")),
        timeseries("Limit utilisation over time", [q(f"max by (limit_type) (risk_manager_limit_utilization_ratio{{{SVC}}})", "{{limit_type}}")], "percentunit"),
        timeseries("Violations and emergency stops (per 5m)", [
            q(f"sum by (limit_type) (increase(risk_manager_limit_violations_total{{{SVC}}}[5m]))", "{{limit_type}} violations"),
            q(f"sum by (reason) (increase(risk_manager_emergency_stops_total{{{SVC}}}[5m]))", "stop: {{reason}}"),
        ], bars=True),
    ]
    return per_service("34", "risk-manager", "Risk Manager Service", "10s", body,
                       "Risk limit utilisation, violations and emergency stops.")


@register("Service Dashboards", "35-config-service.json")
def config_service():
    body = [
        row("Configuration and dashboard server"),
        stat("Config changes (range)", [q(f"sum(increase(config_service_config_changes_total{{{SVC}}}[$__range]))")], w=8, decimals=0),
        stat("Dashboard WebSocket clients", [q(f"sum(dashboard_server_websocket_connections{{{SVC}}})")], w=8, decimals=0),
        stat("Dashboard messages / s", [q(f"sum(rate(dashboard_server_websocket_messages_sent_total{{{SVC}}}[$__rate_interval]))")], w=8),
        timeseries("Config changes by section", [q(f"sum by (section) (increase(config_service_config_changes_total{{{SVC}}}[$__rate_interval]))", "{{section}}")], bars=True),
        timeseries("Dashboard WebSocket clients and messages", [
            q(f"sum(dashboard_server_websocket_connections{{{SVC}}})", "clients"),
            q(f"sum by (channel) (rate(dashboard_server_websocket_messages_sent_total{{{SVC}}}[$__rate_interval]))", "{{channel}} msg/s"),
        ]),
    ]
    panels = service_header(SVC) + body + service_logs()
    variables = [service_variable('label_values(up{service=~"config-service|dashboard-server"}, service)')]
    return dashboard("b25-config-service", "35 Configuration Service", ["service", "config-service", "dashboard-server"],
                     "30s", "now-1h", panels, variables,
                     "The support tier: config-service and dashboard-server (pick one with the service selector).")


# ---- Alerts --------------------------------------------------------------------------------------

@register("Alerts", "40-alerts.json")
def alerts():
    firing = f'ALERTS{{alertstate="firing", {SVC}}}'
    panels = [
        row("Now"),
        stat("Firing", [q(f"count({firing}) or vector(0)")], w=6, decimals=0, steps=thresholds("green", 1, "red")),
        stat("Critical firing", [q(f'count(ALERTS{{alertstate="firing", severity="critical", {SVC}}}) or vector(0)')], w=6, decimals=0, steps=thresholds("green", 1, "red")),
        stat("Pending", [q(f'count(ALERTS{{alertstate="pending", {SVC}}}) or vector(0)')], w=6, decimals=0, steps=thresholds("green", 1, "orange")),
        piechart("Firing by severity", [q(f"count by (severity) ({firing})", "{{severity}}")], w=6, h=4),
        table("Active alerts (firing for)", [q(f'time() - ALERTS_FOR_STATE{{{SVC}}}', instant=True, fmt="table")], w=24, h=9, unit="s",
              organize={"excludeByName": {"Time": True, "__name__": True}, "renameByName": {"Value": "active for"}}, sort_by="active for",
              description="Pending and firing alerts, with how long each has been active (ALERTS_FOR_STATE)."),
        row("History"),
        timeseries("Firing alerts by name", [q(f"count by (alertname) ({firing})", "{{alertname}}")], stack=True, w=12),
        timeseries("Firing alerts by severity", [q(f"count by (severity) ({firing})", "{{severity}}")], stack=True, w=12),
        table("Alerts fired in the range (minutes firing)", [q(f"sum by (alertname, severity, service) (count_over_time({firing}[$__range])) * 15 / 60", instant=True, fmt="table")],
              w=24, organize={"excludeByName": {"Time": True}, "renameByName": {"Value": "minutes firing"}}, sort_by="minutes firing",
              description="Approximate: evaluation steps firing x 15 s evaluation interval."),
        row("Notification path"),
        logs("Alertmanager and B25.Alerting logs", '{service_name=~"alertmanager|b25-alerting"}', h=10),
    ]
    # All = ".*" here: alerts without a service label (host, disk) must stay visible.
    return dashboard("b25-alerts", "40 Alerts", ["alerts"], "30s", "now-24h", panels,
                     [service_variable(all_value=".*")], "Active alerts and alert history.")


@register("Alerts", "41-b25-alerting.json")
def b25_alerting():
    s = SVC
    panels = [
        row("Service"),
        stat("Scrape target", [q(f'min(up{{{s}, job!~"blackbox.*"}})')], mappings=UP_DOWN, steps=GREEN_RED, color_mode="background", graph=False, w=4),
        stat("Health probe", [q(f'min(probe_success{{job="blackbox-http", {s}}})')], mappings=UP_DOWN, steps=GREEN_RED, color_mode="background", graph=False, w=4),
        stat("Notifications / min", [q(f"sum(rate(b25_alerting_notifications_received_total{{{s}}}[$__rate_interval])) * 60")], w=4),
        stat("Open incidents", [q(f"max(b25_alerting_open_incidents{{{s}}})")], w=4, decimals=0,
             description="Incidents not closed, counted in the service's storage at each scrape (right after a restart too); replicas share one database, so max, not sum."),
        stat("Pending deliveries", [q(f"sum(b25_alerting_pending_deliveries{{{s}}})")], w=4, decimals=0, steps=thresholds("green", 10, "orange", 100, "red")),
        stat("Failed deliveries (range)", [q(f'sum(increase(b25_alerting_deliveries_total{{{s}, outcome="failed"}}[$__range]))')], w=4, decimals=0,
             steps=thresholds("green", 1, "orange", 10, "red"), description="Outcomes: sent, merged, retry, failed (permanent)."),
        row("Intake (Alertmanager webhook)"),
        timeseries("Notifications: received, duplicates, repeats, rejected", [
            q(f"sum(rate(b25_alerting_notifications_received_total{{{s}}}[$__rate_interval]))", "received"),
            q(f"sum(rate(b25_alerting_duplicates_dropped_total{{{s}}}[$__rate_interval]))", "duplicates dropped"),
            q(f"sum(rate(b25_alerting_repeats_total{{{s}}}[$__rate_interval]))", "repeats (nothing posted)"),
            q(f"sum(rate(b25_alerting_notifications_rejected_total{{{s}}}[$__rate_interval]))", "rejected"),
        ], "reqps", w=8),
        timeseries("Rejections by reason", [q(f"sum by (reason) (rate(b25_alerting_notifications_rejected_total{{{s}}}[$__rate_interval]))", "{{reason}}")], "reqps", w=8, stack=True),
        timeseries("Journal latency (accept to 2xx)", histogram_quantiles("b25_alerting_accept_duration_seconds", s, quantiles=(0.5, 0.99)), "s", w=8,
                   description="Validate and durably journal a notification; Alertmanager waits for it."),
        timeseries("Notifications processed by outcome", [q(f"sum by (outcome) (rate(b25_alerting_notifications_processed_total{{{s}}}[$__rate_interval]))", "{{outcome}}")], "reqps", w=12, stack=True),
        timeseries("Incidents opened and closed (per 5m)", [
            q(f"sum(increase(b25_alerting_incidents_opened_total{{{s}}}[5m]))", "opened"),
            q(f"sum(increase(b25_alerting_incidents_closed_total{{{s}}}[5m]))", "closed"),
        ], w=12, bars=True),
        row("Deliveries"),
        timeseries("Deliveries by channel and outcome", [q(f"sum by (channel, outcome) (rate(b25_alerting_deliveries_total{{{s}}}[$__rate_interval]))", "{{channel}} {{outcome}}")], w=12, stack=True),
        timeseries("Delivery latency p95 per channel (accepted to sent)", [q(f"histogram_quantile(0.95, sum by (le, channel) (rate(b25_alerting_delivery_latency_seconds_bucket{{{s}}}[$__rate_interval])))", "{{channel}}")], "s", w=12),
        heatmap("Delivery latency distribution", "b25_alerting_delivery_latency_seconds_bucket", s, w=12),
        timeseries("Pending deliveries", [q(f"sum by (instance) (b25_alerting_pending_deliveries{{{s}}})", "{{instance}}")], w=12),
        *service_logs(),
    ]
    variables = [service_variable('label_values(up{job="b25-alerting"}, service)', "b25-alerting", multi=False)]
    return dashboard("b25-alerting", "41 B25 Alerting Service", ["alerts", "service", "b25-alerting"], "10s", "now-1h",
                     panels, variables, "The webhook receiver: intake, dedupe, incidents, deliveries.")


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def check():
    """Compares the committed JSON with what this script generates now."""
    expected = {os.path.join(OUT, folder, filename): render(build)
                for (folder, filename), build in DASHBOARDS.items()}
    actual = set()
    for root, _, files in os.walk(OUT):
        actual.update(os.path.join(root, f) for f in files if f.endswith(".json"))
    stale = sorted(p for p, text in expected.items()
                   if not os.path.exists(p) or open(p, encoding="utf-8").read() != text)
    extra = sorted(actual - set(expected))
    for p in stale:
        print("stale or missing:", os.path.relpath(p, os.path.dirname(HERE)))
    for p in extra:
        print("not generated:", os.path.relpath(p, os.path.dirname(HERE)))
    return 1 if stale or extra else 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(check())
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    for (folder, filename), build in sorted(DASHBOARDS.items()):
        path = os.path.join(OUT, folder, filename)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(build))
        print(os.path.relpath(path, os.path.dirname(HERE)))


if __name__ == "__main__":
    main()
