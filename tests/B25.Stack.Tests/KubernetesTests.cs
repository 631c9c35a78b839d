using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace B25.Stack.Tests;

/// <summary>compose/kubernetes/: what the manifests must say for two replicas to run safely.</summary>
public sealed partial class KubernetesTests
{
    private readonly Kubernetes _k8s = new();

    [Fact]
    public void Kustomization_applies_every_manifest_of_the_folder_but_the_example_secret()
    {
        var listed = _k8s.Kustomization.Items("resources").Select(r => r.Str()!).ToHashSet();
        var files = Directory.EnumerateFiles(Kubernetes.Dir, "*.yaml").Select(Path.GetFileName).OfType<string>()
            .Where(f => f != "kustomization.yaml" && !f.EndsWith(".example.yaml", StringComparison.Ordinal)).ToHashSet();
        Assert.Equal(files.Order(), listed.Order());
        foreach (var (file, manifest) in _k8s.Resources)
        {
            Assert.False(manifest.Str("apiVersion") is null || manifest.Str("kind") is null || manifest.Get("metadata").Str("name") is null,
                $"{file}: apiVersion, kind and metadata.name are required");
        }
        Assert.DoesNotContain("secret.example.yaml", listed);
        Assert.Equal("Secret", _k8s.ExampleSecret.Str("kind"));
    }

    [Fact]
    public void Deployment_runs_two_replicas_and_keeps_both_during_a_rollout()
    {
        var spec = _k8s.Deployment.Get("spec");
        Assert.Equal("2", spec.Str("replicas"));
        Assert.True(_k8s.SelectsThePods(spec.Get("selector")), "the Deployment's selector does not match its pod labels");
        var rolling = spec.Get("strategy").Get("rollingUpdate");
        Assert.Equal("0", rolling.Str("maxUnavailable"));
        Assert.NotEqual("0", rolling.Str("maxSurge"));
    }

    [Fact]
    public void Probes_use_the_service_health_endpoints_on_its_http_port()
    {
        var container = _k8s.Container;
        var http = container.Items("ports").Single(p => p.Str("name") == "http");
        Assert.Equal("8080", http.Str("containerPort"));
        Assert.Equal("/health/live", container.Get("startupProbe").Get("httpGet").Str("path"));
        // Liveness must not depend on storage: a database outage would restart every replica at once.
        Assert.Equal("/health/live", container.Get("livenessProbe").Get("httpGet").Str("path"));
        Assert.Equal("/health/ready", container.Get("readinessProbe").Get("httpGet").Str("path"));
        foreach (var probe in new[] { "startupProbe", "livenessProbe", "readinessProbe" })
        {
            Assert.Contains(container.Get(probe).Get("httpGet").Str("port"), new[] { "http", "8080" });
        }
        // The first start migrates the schema before the port opens: a minute at least.
        var startup = container.Get("startupProbe");
        Assert.True(int.Parse(startup.Str("periodSeconds") ?? "10") * int.Parse(startup.Str("failureThreshold") ?? "3") >= 60);
    }

    [Fact]
    public void Service_sends_to_the_pods_http_port()
    {
        var service = _k8s.Single("Service");
        Assert.Equal("b25-alerting", service.Get("metadata").Str("name"));
        Assert.True(_k8s.LabelsOnThePods(service.Get("spec").Get("selector")), "the Service's selector does not match the pods");
        var port = service.Get("spec").Items("ports").Single();
        Assert.Equal("8080", port.Str("port"));
        Assert.Contains(port.Str("targetPort"), new[] { "http", "8080" });
    }

    [Fact]
    public void Disruption_budget_keeps_one_replica_up()
    {
        var pdb = _k8s.Single("PodDisruptionBudget");
        Assert.Equal("policy/v1", pdb.Str("apiVersion"));
        Assert.Equal("1", pdb.Get("spec").Str("minAvailable"));
        Assert.True(_k8s.SelectsThePods(pdb.Get("spec").Get("selector")), "the PodDisruptionBudget does not select the pods");
    }

    [Fact]
    public void Replicas_are_spread_over_nodes()
    {
        var spec = _k8s.PodSpec;
        var spread = spec.Items("topologySpreadConstraints")
            .Any(c => c.Str("topologyKey") == "kubernetes.io/hostname" && c.Str("whenUnsatisfiable") == "DoNotSchedule" && _k8s.SelectsThePods(c.Get("labelSelector")));
        var antiAffinity = spec.Get("affinity").Get("podAntiAffinity").Items("requiredDuringSchedulingIgnoredDuringExecution")
            .Any(t => t.Str("topologyKey") == "kubernetes.io/hostname" && _k8s.SelectsThePods(t.Get("labelSelector")));
        Assert.True(spread || antiAffinity, "no hard spread over kubernetes.io/hostname for the pods");
    }

    [Fact]
    public void Termination_grace_outlasts_in_flight_deliveries()
    {
        // preStop, then the .NET host's shutdown, which waits up to 30 s for in-flight work.
        var preStop = _k8s.Container.Get("lifecycle").Get("preStop").Get("exec").Items("command").Select(c => c.Str()).ToList();
        var sleep = preStop.Count == 2 && preStop[0] == "sleep" ? int.Parse(preStop[1]!) : 0;
        var grace = int.Parse(_k8s.PodSpec.Str("terminationGracePeriodSeconds") ?? "30");
        Assert.True(grace >= sleep + 30 + 10, $"terminationGracePeriodSeconds {grace} leaves no margin after preStop {sleep} s and the host's 30 s");
    }

    [Fact]
    public void Container_runs_as_non_root_on_a_read_only_root_filesystem()
    {
        var pod = _k8s.PodSpec.Get("securityContext");
        var container = _k8s.Container.Get("securityContext");
        Assert.Equal("true", pod.Str("runAsNonRoot"));
        Assert.NotEqual("0", pod.Str("runAsUser"));
        Assert.Equal("RuntimeDefault", pod.Get("seccompProfile").Str("type"));
        Assert.Equal("true", container.Str("readOnlyRootFilesystem"));
        Assert.Equal("false", container.Str("allowPrivilegeEscalation"));
        Assert.Equal(["ALL"], container.Get("capabilities").Items("drop").Select(c => c.Str()));
        Assert.Equal("false", _k8s.PodSpec.Str("automountServiceAccountToken"));
        // Whatever is writable is a scratch emptyDir, never a persistent volume: the state is in PostgreSQL.
        var volumes = _k8s.PodSpec.Items("volumes").ToDictionary(v => v.Str("name")!);
        Assert.All(_k8s.Container.Items("volumeMounts"), m => Assert.NotNull(volumes[m.Str("name")!].Get("emptyDir")));
    }

    [Fact]
    public void Container_has_resource_requests_and_limits()
    {
        var resources = _k8s.Container.Get("resources");
        foreach (var kind in new[] { "cpu", "memory" })
        {
            var request = Quantity(resources.Get("requests").Str(kind));
            var limit = Quantity(resources.Get("limits").Str(kind));
            Assert.True(request > 0 && limit >= request, $"{kind}: request {request}, limit {limit}");
        }
        // The measured peak RSS is 340-430 MB (docs/benchmarks.md): the limit leaves room above it.
        Assert.True(Quantity(resources.Get("limits").Str("memory")) >= 768.0 * 1024 * 1024);
    }

    [Fact]
    public void Every_secret_setting_comes_from_the_secret()
    {
        var env = _k8s.Container.Items("env").ToDictionary(e => e.Str("name")!);
        var secretName = _k8s.ExampleSecret.Get("metadata").Str("name");
        var exampleKeys = _k8s.ExampleSecret.Entries("stringData").Select(e => e.Key).ToHashSet();
        var required = new[] { "Storage__ConnectionString", "Bus__RabbitMq__Uri", "Webhook__BearerToken", "Slack__BotToken", "PagerDuty__RoutingKey", "Smtp__Password" };
        var failures = new List<string>();
        foreach (var name in required)
        {
            if (!env.TryGetValue(name, out var entry)) { failures.Add($"{name}: not set"); continue; }
            var reference = entry.Get("valueFrom").Get("secretKeyRef");
            if (reference is null) { failures.Add($"{name}: not from a secretKeyRef"); continue; }
            if (reference.Str("name") != secretName) failures.Add($"{name}: from Secret {reference.Str("name")}, not {secretName}");
            if (!exampleKeys.Contains(reference.Str("key")!)) failures.Add($"{name}: key {reference.Str("key")} is not in secret.example.yaml");
        }
        // Any other setting that is a secret (PagerDuty:RoutingKeys:<name>) too.
        foreach (var (name, entry) in env)
        {
            if (ServiceSettings.IsSecret(name) && entry.Get("valueFrom").Get("secretKeyRef") is null) failures.Add($"{name}: a secret, not from a secretKeyRef");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void No_secret_value_is_written_in_the_manifests()
    {
        var failures = new List<string>();
        var configMap = _k8s.Single("ConfigMap");
        foreach (var (key, value) in configMap.Entries("data"))
        {
            if (ServiceSettings.IsSecret(key)) failures.Add($"ConfigMap: {key} is a secret");
            failures.AddRange(SecretValues.Problems(key, value.Str() ?? "").Select(p => "ConfigMap: " + p));
        }
        foreach (var entry in _k8s.Container.Items("env").Where(e => e.Str("value") is not null))
        {
            failures.AddRange(SecretValues.Problems(entry.Str("name")!, entry.Str("value")!).Select(p => "Deployment: " + p));
        }
        foreach (var (file, manifest) in _k8s.Resources)
        {
            if (manifest.Str("kind") == "Secret") failures.Add($"{file}: a Secret applied with the kustomization would overwrite the real one");
            // By value only: manifests have keys such as automountServiceAccountToken that are no secrets.
            failures.AddRange(manifest.Scalars().SelectMany(s => SecretValues.Problems(s.Key ?? "", s.Value, byName: false)).Select(p => $"{file}: {p}"));
        }
        // The example holds placeholders only.
        foreach (var (key, value) in _k8s.ExampleSecret.Entries("stringData"))
        {
            if (!(value.Str() ?? "").Contains("change-me", StringComparison.Ordinal)) failures.Add($"secret.example.yaml: {key} is not a change-me placeholder");
        }
        Assert.Empty(_k8s.ExampleSecret.Entries("data"));
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_setting_is_a_key_the_service_knows()
    {
        var keys = _k8s.Single("ConfigMap").Entries("data").Select(e => e.Key)
            .Concat(_k8s.Container.Items("env").Select(e => e.Str("name")!))
            .ToList();
        Assert.Contains("Storage__Provider", keys);
        Assert.Contains("Storage__ReplicaName", keys);
        var unknown = keys.Where(k => !ServiceSettings.IsKnown(k)).ToList();
        Assert.True(unknown.Count == 0, "not a setting of B25.Alerting (src/B25.Alerting/appsettings.json, Storage keys): " + string.Join(", ", unknown));
        // The ConfigMap is what the pods read.
        var configMapName = _k8s.Single("ConfigMap").Get("metadata").Str("name");
        Assert.Contains(_k8s.Container.Items("envFrom"), e => e.Get("configMapRef").Str("name") == configMapName);
    }

    [Fact]
    public void Kubernetes_and_compose_run_the_service_the_same_way()
    {
        var data = _k8s.Single("ConfigMap").Entries("data").ToDictionary(e => e.Key, e => e.Value.Str());
        var compose = new Compose();
        var replica = Compose.Environment(compose.Service("b25-alerting-1"));
        // Both listen on the image's ASPNETCORE_HTTP_PORTS: neither may override it.
        Assert.DoesNotContain(data.Keys, k => k is "Urls" or "ASPNETCORE_URLS");
        foreach (var key in new[] { "Storage__Provider", "Storage__ClaimLease", "Bus__Transport" })
        {
            Assert.Equal(replica[key], data[key]);
        }
        // The replica's name is the pod's name.
        var replicaName = _k8s.Container.Items("env").Single(e => e.Str("name") == "Storage__ReplicaName");
        Assert.Equal("metadata.name", replicaName.Get("valueFrom").Get("fieldRef").Str("fieldPath"));
    }

    [Fact]
    public void Image_is_pinned_and_is_the_one_compose_builds()
    {
        var image = _k8s.Container.Str("image")!;
        var name = image.Split(':')[0];
        Assert.Equal(new Compose().Service("b25-alerting-1").Str("image")!.Split(':')[0], name);
        var pin = _k8s.Kustomization.Items("images").Single(i => i.Str("name") == name);
        Assert.False(pin.Str("newTag") is null or "latest" && pin.Str("digest") is null, "kustomization.yaml does not pin the image");
    }

    [Fact]
    public void Readme_creates_the_secret_with_every_key_the_deployment_reads()
    {
        var readme = File.ReadAllText(Path.Combine(Kubernetes.Dir, "README.md"));
        var command = CreateSecret().Match(readme);
        Assert.True(command.Success, "compose/kubernetes/README.md has no `kubectl [-n NAMESPACE] create secret generic b25-alerting` command");
        var keys = _k8s.Container.Items("env").Select(e => e.Get("valueFrom").Get("secretKeyRef")).OfType<YamlNode>().Select(r => r.Str("key")!);
        foreach (var key in keys)
        {
            Assert.True(Regex.IsMatch(command.Value, $@"--from-(literal|file)={Regex.Escape(key)}="), $"the README's command does not create the key {key}");
        }
    }

    private static double Quantity(string? text)
    {
        Assert.NotNull(text);
        var m = Regex.Match(text, @"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$");
        Assert.True(m.Success, $"unsupported quantity {text}");
        var factor = m.Groups[2].Value switch
        {
            "m" => 0.001, "Ki" => 1024, "Mi" => 1024.0 * 1024, "Gi" => 1024.0 * 1024 * 1024,
            "k" => 1e3, "M" => 1e6, "G" => 1e9, _ => 1,
        };
        return double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * factor;
    }

    // The command with its continuation lines.
    [GeneratedRegex(@"kubectl (?:(?:-n|--namespace)[ =]\S+ )?create secret generic b25-alerting(?:[^\n]*\\\n)*[^\n]*")]
    private static partial Regex CreateSecret();
}
