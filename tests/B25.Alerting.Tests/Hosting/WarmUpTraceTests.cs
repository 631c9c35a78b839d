using System.Text;
using B25.Alerting.Hosting;
using B25.Alerting.Storage;
using B25.Alerting.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace B25.Alerting.Tests.Hosting;

/// <summary>Looks at the service just before the start's warm-up and just after it, from inside it: a step first and a step last.</summary>
internal static class AroundWarmUp
{
    public static IWebHostBuilder Around(this IWebHostBuilder builder, Func<IServiceProvider, Task> before, Func<IServiceProvider, Task> after) =>
        builder.ConfigureTestServices(services =>
        {
            var steps = services.Where(d => d.ServiceType == typeof(WarmUpStep)).ToList();
            foreach (var step in steps) services.Remove(step);
            services.AddSingleton(new WarmUpStep("test before", (sp, _) =>
            {
                // Every step runs to its end however busy the machine is (in production a slow step is skipped instead).
                var warmUp = sp.GetRequiredService<StartupWarmUp>();
                warmUp.StepTimeout = TimeSpan.FromMinutes(2);
                warmUp.Budget = TimeSpan.FromMinutes(5);
                return before(sp);
            }));
            foreach (var step in steps) services.Add(step);
            services.AddSingleton(new WarmUpStep("test after", (sp, _) => after(sp)));
        });

    /// <summary>What the warm-up said it did, once it is done; fails the test if a step failed or gave up.</summary>
    public static async Task<string> DoneAsync(IServiceProvider services)
    {
        var warmUp = services.GetRequiredService<StartupWarmUp>();
        await warmUp.Done.WaitAsync(TimeSpan.FromMinutes(5));
        Assert.DoesNotContain("gave up", warmUp.Report);
        Assert.Contains("delivery ", warmUp.Report);
        Assert.DoesNotMatch(@"delivery (failed|skipped)", warmUp.Report);
        Assert.Matches(@"webhook \d+ ms", warmUp.Report);
        return warmUp.Report;
    }
}

/// <summary>The warm-up runs the real delivery path on a sample: none of it may count in the service's metrics.</summary>
[Collection(B25.Alerting.Tests.Observability.ProcessWideMetrics.Name)]
public sealed class WarmUpMetricsTests : IDisposable
{
    private readonly SlackStandIn _slack = new();

    public void Dispose() => _slack.Dispose();

    /// <summary>
    /// Every b25_alerting_* series of the process, as /metrics would write it. The Slack token gauge is left out: it is
    /// the readiness check's answer about the real token (the warm-up asks it early), not something the sample did. So are
    /// SQLite's writer metrics: they say how busy the single writer was, whoever held it (the warm-up's writes took it too).
    /// </summary>
    private static async Task<string> ServiceMetricsAsync()
    {
        using var stream = new MemoryStream();
        await Prometheus.Metrics.DefaultRegistry.CollectAndExportAsTextAsync(stream);
        return string.Join('\n', Encoding.UTF8.GetString(stream.ToArray()).Split('\n')
            .Where(l => l.StartsWith("b25_alerting_", StringComparison.Ordinal) && !l.StartsWith("b25_alerting_slack_token_valid", StringComparison.Ordinal)
                        && !l.StartsWith("b25_alerting_sqlite_writer_", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task The_warm_up_leaves_every_service_metric_as_it_found_it_even_with_a_broken_template()
    {
        // A template that renders no valid blocks: the sample page goes out minimal, which a real page counts as a fallback.
        using var templates = new BrokenSlackTemplates();
        string? before = null, after = null;
        using var factory = new AlertingFactory(_slack, new() { ["Templates:Path"] = templates.Path });
        using var service = factory.WithWebHostBuilder(b => b.Around(
            async _ =>
            {
                // The fallback counter is born (at 0) with the notifier's type: born before "before", so only a count shows.
                System.Runtime.CompilerServices.RuntimeHelpers.RunClassConstructor(typeof(B25.Alerting.Delivery.Slack.SlackNotifier).TypeHandle);
                before = await ServiceMetricsAsync();
            },
            async _ => after = await ServiceMetricsAsync()));
        await AroundWarmUp.DoneAsync(service.Services);

        Assert.NotNull(before);
        Assert.Contains("b25_alerting_slack_fallback_total{operation=\"post\"}", before);
        Assert.Equal(before, after);
    }
}

/// <summary>The warm-up runs the dispatcher's claim, send mark and record for real, in a transaction it rolls back.</summary>
public sealed class WarmUpStorageTests : IDisposable
{
    private readonly SlackStandIn _slack = new();

    public void Dispose() => _slack.Dispose();

    /// <summary>Every row of the tables the journal, the state machine and a delivery touch, and where the deliveries' id sequence stands.</summary>
    private static async Task<(string Tables, string Sequence)> OutboxAsync(IServiceProvider services)
    {
        var storage = services.GetRequiredService<IStorageProvider>();
        var postgres = storage.Kind == StorageProviderKind.Postgres;
        await using var db = await storage.OpenAsync();
        var text = new StringBuilder();
        foreach (var table in new[] { "notifications", "incidents", "alerts", "deliveries", "delivery_messages", "enrichments" }.Concat(postgres ? ["claims"] : []))
        {
            var rows = (await db.QueryAsync($"SELECT * FROM {table}"))
                .Select(r => string.Join(", ", ((IDictionary<string, object?>)r).Select(c => $"{c.Key}={c.Value}"))).Order(StringComparer.Ordinal);
            text.AppendLine($"{table}: [{string.Join("; ", rows)}]");
        }
        // A sequence is not rolled back with its transaction: the delivery step must not draw from it.
        var sequence = postgres
            ? (await db.QuerySingleAsync<long>("SELECT COALESCE((SELECT last_value FROM pg_sequences WHERE sequencename = 'deliveries_id_seq'), -1)")).ToString()
            : string.Join(", ", await db.QueryAsync<string>("SELECT name || '=' || seq FROM sqlite_sequence ORDER BY name"));
        return (text.ToString(), sequence);
    }

    [Fact]
    public async Task The_warm_up_leaves_the_outbox_and_claims_as_it_found_them_and_calls_no_Slack_method()
    {
        (string Tables, string Sequence)? before = null, beforeTwoMore = null, after = null;
        using var factory = new AlertingFactory(_slack);
        using var service = factory.WithWebHostBuilder(b => b.Around(
            async sp => before = await OutboxAsync(sp),
            async sp =>
            {
                // Two more at once, as several replicas starting together on one database: neither waits on the other's rows or claim.
                beforeTwoMore = await OutboxAsync(sp);
                var delivery = StartupWarmUp.Steps().Single(s => s.Name == "delivery");
                await Task.WhenAll(delivery.RunAsync(sp, CancellationToken.None), delivery.RunAsync(sp, CancellationToken.None))
                    .WaitAsync(TimeSpan.FromSeconds(60));
                after = await OutboxAsync(sp);
            }));
        await AroundWarmUp.DoneAsync(service.Services);

        Assert.NotNull(before);
        Assert.Equal(before.Value.Tables, after?.Tables);
        // On PostgreSQL the state machine step's planned deliveries (rolled back) draw ids; the delivery step brings its own.
        Assert.Equal(beforeTwoMore, after);
        Assert.All(_slack.Calls.Concat(_slack.Reads), c => Assert.Equal("auth.test", c.Method)); // the readiness check's, nothing else
        Assert.Empty(_slack.WebhookPosts);
    }
}
