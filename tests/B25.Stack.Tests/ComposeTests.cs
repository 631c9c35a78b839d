using System.Diagnostics;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace B25.Stack.Tests;

public sealed partial class ComposeTests
{
    private readonly Compose _compose = new();

    [Fact]
    public void Compose_file_and_every_stack_config_parse_as_yaml()
    {
        var files = new[]
        {
            "compose/docker-compose.yml", "compose/loki/loki-config.yml", "compose/promtail/promtail-config.yml",
            "compose/blackbox/blackbox.yml", "prometheus/prometheus.yml", "alertmanager/alertmanager.yml",
        }.Concat(Directory.EnumerateFiles(Repo.PathOf("grafana", "provisioning"), "*.yml", SearchOption.AllDirectories).Select(Repo.Relative));
        var failures = new List<string>();
        foreach (var file in files)
        {
            try { Repo.LoadYaml(Repo.PathOf(file)); }
            catch (Exception e) when (e is IOException or YamlDotNet.Core.YamlException or InvalidDataException)
            {
                failures.Add($"{file}: {e.Message}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.NotEmpty(_compose.Services);
    }

    [Fact]
    public void Every_file_or_folder_mounted_or_copied_from_the_repo_exists()
    {
        var failures = new List<string>();
        foreach (var (service, source, _) in _compose.RepoMounts())
        {
            if (!File.Exists(source) && !Directory.Exists(source)) failures.Add($"{service}: mounts {Repo.Relative(source)}, which does not exist");
        }
        foreach (var (service, node) in _compose.Services)
        {
            if (node.Get("build") is not { } build) continue;
            var context = Path.GetFullPath(Path.Combine(Compose.Dir, build.Str("context") ?? "."));
            var dockerfile = Path.Combine(context, build.Str("dockerfile") ?? "Dockerfile");
            if (!File.Exists(dockerfile)) { failures.Add($"{service}: Dockerfile {Repo.Relative(dockerfile)} missing"); continue; }
            foreach (var line in File.ReadAllLines(dockerfile))
            {
                var copy = CopyLine().Match(line);
                if (!copy.Success) continue;
                var args = copy.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                foreach (var src in args[..^1])
                {
                    var path = Path.Combine(context, src.TrimEnd('/'));
                    if (!File.Exists(path) && !Directory.Exists(path)) failures.Add($"{service}: {Repo.Relative(dockerfile)} copies {src}, which does not exist");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_prometheus_target_is_a_compose_service_serving_that_port()
    {
        var prometheus = Repo.LoadYaml(Repo.PathOf("prometheus", "prometheus.yml"));
        var failures = new List<string>();
        var addresses = new List<(string Job, string Address)>();
        foreach (var am in prometheus.Get("alerting").Items("alertmanagers"))
        {
            addresses.AddRange(am.Items("static_configs").SelectMany(s => s.Items("targets")).Select(t => ("alerting", t.Str()!)));
        }
        foreach (var job in prometheus.Items("scrape_configs"))
        {
            var name = job.Str("job_name") ?? "?";
            var targets = job.Items("static_configs").SelectMany(s => s.Items("targets")).Select(t => t.Str()!).ToList();
            var rewritten = job.Items("relabel_configs").FirstOrDefault(r => r.Str("target_label") == "__address__")?.Str("replacement");
            if (rewritten is null)
            {
                addresses.AddRange(targets.Select(t => (name, t)));
                continue;
            }
            // A probe job (blackbox): Prometheus scrapes the exporter; the targets are what it probes.
            addresses.Add((name, rewritten));
            foreach (var target in targets)
            {
                var (host, port) = ProbeHostPort(target);
                if (host.Contains('.')) continue; // an external host (exchange API), not on the compose network
                addresses.Add((name + " probe", port is null ? host : $"{host}:{port}"));
            }
        }
        Assert.NotEmpty(addresses);
        foreach (var (job, address) in addresses)
        {
            var colon = address.LastIndexOf(':');
            var host = colon < 0 ? address : address[..colon];
            int? port = colon < 0 ? null : int.Parse(address[(colon + 1)..]);
            var service = host == "localhost" ? "prometheus" : _compose.ServiceForHost(host);
            if (service is null) { failures.Add($"job {job}: {address}: no compose service or alias named {host}"); continue; }
            var served = Compose.ServedPorts(_compose.Service(service)!);
            if (port is { } p && !served.Contains(p))
            {
                failures.Add($"job {job}: {address}: service {service} serves [{string.Join(", ", served.Order())}], not {p}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Alertmanager_webhook_reaches_the_alerting_service_with_the_mounted_token()
    {
        var path = Repo.PathOf("alertmanager", "alertmanager.yml");
        Assert.True(File.Exists(path), "alertmanager/alertmanager.yml is missing");
        var config = Repo.LoadYaml(path);
        var webhooks = config.Items("receivers").SelectMany(r => r.Items("webhook_configs")).ToList();
        Assert.NotEmpty(webhooks);
        var alertmanager = _compose.Service("alertmanager");
        Assert.NotNull(alertmanager);
        var secretTargets = alertmanager.Items("secrets").Select(s => s is YamlMappingNode ? s.Str("target") : "/run/secrets/" + s.Str()).ToHashSet();
        var failures = new List<string>();
        foreach (var webhook in webhooks)
        {
            var url = new Uri(webhook.Str("url") ?? throw new InvalidDataException("a webhook_config has no url"));
            var service = _compose.ServiceForHost(url.Host);
            if (service is null) { failures.Add($"webhook {url}: no compose service named {url.Host}"); continue; }
            if (_compose.Service(service)?.Get("build")?.Str("dockerfile") != "compose/alerting.Dockerfile")
            {
                failures.Add($"webhook {url}: {service} is not the B25.Alerting service");
            }
            if (!Compose.ServedPorts(_compose.Service(service)!).Contains(url.Port)) failures.Add($"webhook {url}: {service} does not serve port {url.Port}");
            var auth = webhook.Get("http_config").Get("authorization");
            var credentialsFile = auth.Str("credentials_file");
            if (credentialsFile is null) failures.Add($"webhook {url}: no authorization.credentials_file (the bearer token must come from the mounted secret)");
            else if (!secretTargets.Contains(credentialsFile)) failures.Add($"webhook {url}: credentials_file {credentialsFile} is not a secret mounted into alertmanager ({string.Join(", ", secretTargets)})");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_variable_compose_reads_is_documented_in_env_example_and_env_is_not_committed()
    {
        var example = Path.Combine(Compose.Dir, ".env.example");
        Assert.True(File.Exists(example), "compose/.env.example is missing");
        var documented = File.ReadAllLines(example)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#') && l.Contains('='))
            .Select(l => l[..l.IndexOf('=')].Trim())
            .ToHashSet();
        var used = Compose.InterpolatedVariables()
            .Concat(_compose.Root.Entries("secrets").Select(s => s.Value.Str("environment")).OfType<string>())
            .Distinct()
            .ToList();
        Assert.NotEmpty(used);
        var missing = used.Where(v => !documented.Contains(v)).ToList();
        Assert.True(missing.Count == 0, "not in compose/.env.example: " + string.Join(", ", missing));
        var gitignore = File.ReadAllLines(Repo.PathOf(".gitignore")).Select(l => l.Trim());
        Assert.Contains("compose/.env", gitignore);
    }

    [Fact]
    public void Services_that_bind_loopback_by_default_listen_on_all_interfaces_in_compose()
    {
        // Without a listen setting the service binds 127.0.0.1:8080: unreachable from other containers. Its image
        // sets the standard ASPNETCORE_HTTP_PORTS, which the service honours; nothing in compose may override it.
        var dockerfile = File.ReadAllText(Repo.PathOf("compose/alerting.Dockerfile"));
        Assert.Matches(@"(?m)^ENV ASPNETCORE_HTTP_PORTS=8080\s*$", dockerfile);
        Assert.All(AlertingReplicas, r =>
        {
            var environment = Compose.Environment(r.Node);
            Assert.False(environment.ContainsKey("Urls") || environment.ContainsKey("ASPNETCORE_URLS"), "compose overrides the image's ASPNETCORE_HTTP_PORTS");
        });
        Assert.Equal("0.0.0.0", _compose.Service("simulator").Get("environment").Str("Simulator__Host"));
    }

    [Fact]
    public void Alerting_state_lives_in_its_own_postgres_on_a_named_volume()
    {
        var connection = Compose.Environment(AlertingReplicas[0].Node)["Storage__ConnectionString"];
        var parts = ConnectionString(connection);
        var host = parts["Host"];
        var service = _compose.Service(host);
        Assert.True(service is not null, $"Storage__ConnectionString names host {host}, which is no compose service");
        Assert.StartsWith("postgres:", service.Str("image"));
        Assert.True(Compose.ServedPorts(service).Contains(int.Parse(parts.GetValueOrDefault("Port", "5432"))), $"{host} does not serve the port the replicas use");
        // Not the trading database's stand-in: a DatabaseDown alert must be deliverable while it is down.
        Assert.NotEqual("postgres", host);
        var env = Compose.Environment(service);
        Assert.Equal(parts["Database"], env["POSTGRES_DB"]);
        Assert.Equal(parts["Username"], env["POSTGRES_USER"]);
        var volumes = _compose.Root.Entries("volumes").Select(v => v.Key).ToHashSet();
        Assert.Contains(service.Items("volumes").Select(v => v.Str()!.Split(':')),
            mount => volumes.Contains(mount[0]) && mount[1] == "/var/lib/postgresql/data");
        // The healthcheck the replicas wait for goes over TCP: during initdb the server listens on the socket only.
        Assert.Contains("-h 127.0.0.1", string.Join(' ', service.Get("healthcheck").Items("test").Select(t => t.Str())));
    }

    [Fact]
    public void Alerting_postgres_password_is_one_secret_shared_by_the_database_and_the_replicas()
    {
        var password = ConnectionString(Compose.Environment(AlertingReplicas[0].Node)["Storage__ConnectionString"])["Password"];
        var variable = Regex.Match(password, @"^\$\{([A-Za-z_][A-Za-z0-9_]*)").Groups[1].Value;
        Assert.False(variable.Length == 0, $"the replicas' database password is not a variable: {password}");
        var postgres = _compose.Service("alerting-postgres");
        var file = Compose.Environment(postgres)["POSTGRES_PASSWORD_FILE"];
        var secret = postgres.Items("secrets").Select(s => s.Str() ?? s.Str("source")).Single(s => file == "/run/secrets/" + s);
        Assert.Equal(variable, _compose.Root.Get("secrets").Get(secret!).Str("environment"));
    }

    [Fact]
    public void Two_alerting_replicas_run_one_image_against_the_same_database_and_bus()
    {
        Assert.Equal(["b25-alerting-1", "b25-alerting-2"], AlertingReplicas.Select(r => r.Name));
        var (first, second) = (AlertingReplicas[0].Node, AlertingReplicas[1].Node);
        Assert.Equal(first.Str("image"), second.Str("image"));
        Assert.Equal(first.Get("build").Str("context"), second.Get("build").Str("context"));
        var (a, b) = (Compose.Environment(first), Compose.Environment(second));
        // Everything but the replica's name is the same: database, lease, bus, tokens.
        Assert.Equal(a.Where(e => e.Key != "Storage__ReplicaName").OrderBy(e => e.Key), b.Where(e => e.Key != "Storage__ReplicaName").OrderBy(e => e.Key));
        Assert.Equal("b25-alerting-1", a["Storage__ReplicaName"]);
        Assert.Equal("b25-alerting-2", b["Storage__ReplicaName"]);
        Assert.Equal("Postgres", a["Storage__Provider"]);
        Assert.Equal("RabbitMq", a["Bus__Transport"]);
        var broker = new Uri(Regex.Replace(a["Bus__RabbitMq__Uri"], @"\$\{[^}]*\}", "x"));
        Assert.Equal("rabbitmq", _compose.ServiceForHost(broker.Host));
        Assert.Contains(broker.Port, Compose.ServedPorts(_compose.Service("rabbitmq")!));
        // Reachable from the host side by side.
        var published = AlertingReplicas.SelectMany(r => r.Node.Items("ports").Select(p => p.Str()!.Split(':')[1])).ToList();
        Assert.Equal(published.Distinct().Count(), published.Count);
        Assert.Equal(2, published.Count);
        // Each starts after its database and broker are healthy, and Alertmanager after both.
        foreach (var (name, node) in AlertingReplicas)
        {
            Assert.Equal("service_healthy", node.Get("depends_on").Get("alerting-postgres").Str("condition"));
            Assert.Equal("service_healthy", node.Get("depends_on").Get("rabbitmq").Str("condition"));
            Assert.NotNull(_compose.Service("alertmanager").Get("depends_on").Get(name));
        }
    }

    [Fact]
    public void Alerting_replicas_are_healthy_only_when_ready_and_get_time_to_finish_deliveries()
    {
        foreach (var (name, node) in AlertingReplicas)
        {
            var test = string.Join(' ', node.Get("healthcheck").Items("test").Select(t => t.Str()));
            Assert.True(test.Contains("/health/ready", StringComparison.Ordinal), $"{name}: healthcheck is not /health/ready: {test}");
            // The .NET host waits up to 30 s for in-flight work after SIGTERM; compose's default is 10 s.
            Assert.True(Seconds(node.Str("stop_grace_period") ?? "10s") > 30, $"{name}: stop_grace_period too short for in-flight deliveries");
            // With PostgreSQL the service writes nothing to disk.
            Assert.Equal("true", node.Str("read_only"));
            Assert.Empty(node.Items("volumes"));
        }
    }

    [Fact]
    public void Alerting_replicas_set_only_keys_the_service_knows()
    {
        var unknown = AlertingReplicas.SelectMany(r => Compose.Environment(r.Node).Keys.Where(k => !ServiceSettings.IsKnown(k)).Select(k => $"{r.Name}: {k}")).ToList();
        Assert.True(unknown.Count == 0, "not a setting of B25.Alerting (src/B25.Alerting/appsettings.json, Storage keys): " + string.Join(", ", unknown));
    }

    [Fact]
    public void No_secret_value_is_written_in_the_compose_file()
    {
        var problems = _compose.Services
            .SelectMany(s => Compose.Environment(s.Value).SelectMany(e => SecretValues.Problems(e.Key, e.Value)).Select(p => $"{s.Key}: {p}"))
            .ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        // Every secret setting of the replicas is actually set, from the environment.
        var env = Compose.Environment(AlertingReplicas[0].Node);
        foreach (var key in new[] { "Storage__ConnectionString", "Bus__RabbitMq__Uri", "Webhook__BearerToken", "Slack__BotToken" })
        {
            Assert.True(env.TryGetValue(key, out var value) && value.Contains("${", StringComparison.Ordinal), $"{key} is not set from compose/.env");
        }
    }

    [Fact]
    public void Prometheus_scrapes_every_alerting_replica_by_name()
    {
        var job = Repo.LoadYaml(Repo.PathOf("prometheus", "prometheus.yml")).Items("scrape_configs").Single(j => j.Str("job_name") == "b25-alerting");
        var targets = job.Items("static_configs").SelectMany(s => s.Items("targets")).Select(t => t.Str()).Order();
        Assert.Equal(AlertingReplicas.Select(r => r.Name + ":8080").Order(), targets);
    }

    [Fact]
    public void Every_image_is_pinned_to_a_version()
    {
        var failures = new List<string>();
        foreach (var (service, node) in _compose.Services)
        {
            var image = node.Str("image");
            if (image is null) { failures.Add($"{service}: no image (name built images too, e.g. b25/alerting:local)"); continue; }
            if (!IsPinned(image)) failures.Add($"{service}: image {image} is not pinned");
        }
        foreach (var dockerfile in Directory.EnumerateFiles(Compose.Dir, "*Dockerfile"))
        {
            foreach (var line in File.ReadAllLines(dockerfile))
            {
                var from = FromLine().Match(line);
                if (from.Success && !IsPinned(from.Groups[1].Value)) failures.Add($"{Repo.Relative(dockerfile)}: FROM {from.Groups[1].Value} is not pinned");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_long_running_service_has_a_healthcheck_and_a_restart_policy()
    {
        var failures = _compose.Services
            .Where(s => s.Value.Get("healthcheck") is null || s.Value.Str("restart") is null)
            .Select(s => $"{s.Key}: healthcheck or restart policy missing")
            .ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Prometheus_keeps_15_days_or_50GB_and_exposes_the_snapshot_api_the_backup_uses()
    {
        var command = _compose.Service("prometheus").Items("command").Select(c => c.Str()).ToList();
        Assert.Contains("--storage.tsdb.retention.time=15d", command);
        Assert.Contains("--storage.tsdb.retention.size=50GB", command);
        Assert.Contains("--web.enable-admin-api", command);
        Assert.Contains(_compose.RepoMounts(), m => m.Service == "prometheus" && m.Source == Repo.PathOf("prometheus") && m.Target == "/etc/prometheus");
        var backup = File.ReadAllText(Path.Combine(Compose.Dir, "backup-metrics.sh"));
        Assert.Contains("/api/v1/admin/tsdb/snapshot", backup);
        Assert.DoesNotContain("/home/", backup);
        Assert.Contains("set -euo pipefail", backup);
    }

    [Fact]
    public void Backup_script_is_valid_bash()
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-n");
        start.ArgumentList.Add(Path.Combine(Compose.Dir, "backup-metrics.sh"));
        using var bash = Process.Start(start)!;
        var errors = bash.StandardError.ReadToEnd();
        bash.WaitForExit();
        Assert.True(bash.ExitCode == 0, errors);
    }

    [Fact]
    public void Grafana_provisions_the_mounted_dashboards_folder_with_one_folder_per_subfolder()
    {
        var provider = Repo.LoadYaml(Repo.PathOf("grafana", "provisioning", "dashboards", "dashboards.yml")).Items("providers").Single();
        Assert.Equal("true", provider.Get("options").Str("foldersFromFilesStructure"));
        var path = provider.Get("options").Str("path");
        var mounts = _compose.RepoMounts().Where(m => m.Service == "grafana").ToList();
        Assert.Contains(mounts, m => m.Source == Repo.PathOf("grafana", "dashboards") && m.Target == path);
        Assert.Contains(mounts, m => m.Source == Repo.PathOf("grafana", "provisioning") && m.Target == "/etc/grafana/provisioning");
    }

    [Fact]
    public void Loki_uses_the_tsdb_index_on_schema_v13()
    {
        var loki = Repo.LoadYaml(Repo.PathOf("compose", "loki", "loki-config.yml"));
        var latest = loki.Get("schema_config").Items("configs").Last();
        Assert.Equal("tsdb", latest.Str("store"));
        Assert.Equal("v13", latest.Str("schema"));
        var text = File.ReadAllText(Repo.PathOf("compose", "loki", "loki-config.yml"));
        foreach (var gone in new[] { "shared_store:", "boltdb_shipper:", "enforce_metric_name:", "table_manager:" })
        {
            Assert.False(Regex.IsMatch(text, @"^\s*" + Regex.Escape(gone), RegexOptions.Multiline), $"{gone} is not a Loki 3 setting");
        }
    }

    [Fact]
    public void Blackbox_defines_the_modules_prometheus_uses()
    {
        var modules = Repo.LoadYaml(Repo.PathOf("compose", "blackbox", "blackbox.yml")).Entries("modules").Select(m => m.Key).ToHashSet();
        foreach (var required in new[] { "http_2xx", "http_post_2xx", "tcp_connect", "icmp" }) Assert.Contains(required, modules);
        var used = Repo.LoadYaml(Repo.PathOf("prometheus", "prometheus.yml")).Items("scrape_configs")
            .SelectMany(j => j.Get("params").Items("module")).Select(m => m.Str()!);
        Assert.All(used, m => Assert.Contains(m, modules));
    }

    /// <summary>The B25.Alerting replicas: the services built from compose/alerting.Dockerfile.</summary>
    private List<(string Name, YamlNode Node)> AlertingReplicas =>
        _compose.Services.Where(s => s.Value.Get("build").Str("dockerfile") == "compose/alerting.Dockerfile")
            .Select(s => (s.Key, s.Value)).OrderBy(s => s.Key, StringComparer.Ordinal).ToList();

    private static Dictionary<string, string> ConnectionString(string text) =>
        text.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0].Trim(), p => p.Length > 1 ? p[1].Trim() : "", StringComparer.OrdinalIgnoreCase);

    private static double Seconds(string duration)
    {
        var m = Regex.Match(duration, @"^(?:(\d+)m)?(?:(\d+)s)?$");
        Assert.True(m.Success, $"unsupported duration {duration}");
        return (m.Groups[1].Success ? int.Parse(m.Groups[1].Value) * 60 : 0) + (m.Groups[2].Success ? int.Parse(m.Groups[2].Value) : 0);
    }

    private static (string Host, int? Port) ProbeHostPort(string target)
    {
        if (target.Contains("://", StringComparison.Ordinal))
        {
            var uri = new Uri(target);
            return (uri.Host, uri.Port);
        }
        var colon = target.LastIndexOf(':');
        return colon < 0 ? (target, null) : (target[..colon], int.Parse(target[(colon + 1)..]));
    }

    private static bool IsPinned(string image)
    {
        if (image.Contains('@', StringComparison.Ordinal)) return true; // digest
        var lastSegment = image[(image.LastIndexOf('/') + 1)..];
        var colon = lastSegment.IndexOf(':');
        return colon > 0 && lastSegment[(colon + 1)..] is var tag && tag.Length > 0 && tag != "latest";
    }

    [GeneratedRegex(@"^\s*COPY\s+(?!--from)(?:--\S+\s+)*(.+)$", RegexOptions.IgnoreCase)]
    private static partial Regex CopyLine();

    [GeneratedRegex(@"^\s*FROM\s+(?:--\S+\s+)*(\S+)", RegexOptions.IgnoreCase)]
    private static partial Regex FromLine();
}
