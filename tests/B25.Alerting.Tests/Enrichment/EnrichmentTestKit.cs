using B25.Alerting.Enrichment;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace B25.Alerting.Tests.Enrichment;

/// <summary>
/// A clock whose "now" is set by the test while its timers and timestamps are real: query windows end exactly
/// where the test data ends, and Enrichment:Timeout is real time.
/// </summary>
internal sealed class SettableClock(DateTimeOffset now) : TimeProvider
{
    private long _ticks = now.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>An enricher built the way the service builds it: AddEnrichment over in-memory settings.</summary>
internal sealed class EnricherHost : IDisposable
{
    private readonly ServiceProvider _services;

    public EnricherHost(IDictionary<string, string?> settings, TimeProvider clock)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton(clock);
        services.AddEnrichment(configuration);
        _services = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    public IIncidentEnricher Enricher => _services.GetRequiredService<IIncidentEnricher>();

    public T Get<T>() where T : notnull => _services.GetRequiredService<T>();

    public void Dispose() => _services.Dispose();
}

internal static class TestAlerts
{
    public static string GeneratorUrl(string expression) =>
        $"http://prometheus:9090/graph?g0.expr={Uri.EscapeDataString(expression)}&g0.tab=1";

    public static EnrichmentAlert Firing(string fingerprint, string expression, DateTimeOffset startsAt, params (string Name, string Value)[] labels) =>
        new(fingerprint, "firing", labels.ToDictionary(l => l.Name, l => l.Value), new Dictionary<string, string>(), startsAt, null,
            GeneratorUrl(expression));

    public static EnrichmentAlert WithGeneratorUrl(this EnrichmentAlert alert, string? url) => alert with { GeneratorUrl = url };

    public static EnrichmentRequest Incident(params EnrichmentAlert[] alerts) => Incident("incident-1", alerts);

    /// <summary>An incident whose group labels are the labels every alert has with the same value.</summary>
    public static EnrichmentRequest Incident(string id, IReadOnlyList<EnrichmentAlert> alerts)
    {
        var common = alerts.Count == 0
            ? new Dictionary<string, string>()
            : alerts[0].Labels.Where(l => alerts.All(a => a.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
                .ToDictionary(l => l.Key, l => l.Value);
        return new EnrichmentRequest(id, common, alerts);
    }
}

internal static class Repo
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no B25.Alerting.sln above {AppContext.BaseDirectory}");
    });

    public static string Root => RootPath.Value;

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);
}
