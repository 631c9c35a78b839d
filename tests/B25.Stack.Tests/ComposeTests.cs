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
        // appsettings.json of both .NET programs binds 127.0.0.1: unreachable from other containers.
        var alerting = _compose.Service("b25-alerting").Get("environment");
        Assert.Equal("http://0.0.0.0:8080", alerting.Str("Urls"));
        Assert.Equal("0.0.0.0", _compose.Service("simulator").Get("environment").Str("Simulator__Host"));
    }

    [Fact]
    public void Alerting_journal_lives_on_a_named_volume()
    {
        var service = _compose.Service("b25-alerting");
        var connection = service.Get("environment").Str("Storage__ConnectionString") ?? "";
        var path = Regex.Match(connection, @"Data Source=([^;]+)").Groups[1].Value;
        Assert.StartsWith("/", path);
        var volumes = _compose.Root.Entries("volumes").Select(v => v.Key).ToHashSet();
        Assert.Contains(service.Items("volumes").Select(v => v.Str()!.Split(':')),
            parts => volumes.Contains(parts[0]) && path.StartsWith(parts[1].TrimEnd('/') + "/", StringComparison.Ordinal));
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
