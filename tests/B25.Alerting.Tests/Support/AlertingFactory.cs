using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// The service in-process on a real SQLite file (or, when the run is for PostgreSQL, a fresh PostgreSQL
/// database), with Slack pointed at a stand-in.
/// </summary>
public sealed class AlertingFactory : WebApplicationFactory<Program>
{
    public const string Token = "test-token-123";
    private readonly Dictionary<string, string?> _settings;
    private readonly string? _postgresDatabase;

    private readonly TimeProvider? _time;

    /// <param name="time">The service's clock (a test's fake clock); the system clock when null.</param>
    public AlertingFactory(SlackStandIn? slack, Dictionary<string, string?>? settings = null, TimeProvider? time = null)
    {
        _time = time;
        DatabasePath = Path.Combine(Path.GetTempPath(), $"b25-test-{Guid.NewGuid():N}.db");
        _settings = new Dictionary<string, string?>
        {
            ["Webhook:BearerToken"] = Token,
            ["Storage:ConnectionString"] = $"Data Source={DatabasePath}",
            ["Slack:BotToken"] = slack is null ? "" : "xoxb-test",
            ["Slack:ApiBaseUrl"] = slack?.ApiBaseUrl ?? "http://127.0.0.1:9/api/",
            ["Slack:MessagesPerSecondPerChannel"] = "100",
            ["Slack:BurstPerChannel"] = "100",
        };
        if (TestStores.Postgres)
        {
            var (connectionString, database) = SharedPostgres.CreateDatabaseAsync().GetAwaiter().GetResult();
            _postgresDatabase = database;
            _settings["Storage:Provider"] = "Postgres";
            _settings["Storage:ConnectionString"] = connectionString;
        }
        foreach (var (key, value) in settings ?? []) _settings[key] = value;
    }

    public string DatabasePath { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in _settings) builder.UseSetting(key, value);
        builder.ConfigureAppConfiguration((_, config) => config.AddInMemoryCollection(_settings));
        if (_time is not null)
            builder.ConfigureTestServices(services =>
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton(_time);
            });
    }

    /// <summary>A connection to the service's storage (SQLite or PostgreSQL), for a test's own SQL.</summary>
    internal Task<System.Data.Common.DbConnection> OpenStorageAsync() =>
        Services.GetRequiredService<B25.Alerting.Storage.IStorageProvider>().OpenAsync();

    /// <summary>
    /// Waits for the start's warm-up to end. It counts nowhere (WarmUpMetricsTests), but its steps run alongside a test's
    /// first requests: wait for it before reading a "before" to keep the start's own work out of a count.
    /// </summary>
    public Task WarmedUpAsync() => Services.GetRequiredService<B25.Alerting.Hosting.StartupWarmUp>().Done.WaitAsync(TimeSpan.FromSeconds(60));

    /// <summary>Waits until the service has nothing left to do (<see cref="Settled"/>).</summary>
    public Task SettledAsync(int timeoutMs = 20_000) => Settled.ForAsync(OpenStorageAsync, timeoutMs);

    public HttpClient Authorized()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        return client;
    }

    public static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        foreach (var suffix in new[] { "", "-wal", "-shm", ".lock" })
            try { File.Delete(DatabasePath + suffix); } catch (IOException) { }
        if (_postgresDatabase is not null) SharedPostgres.DropDatabaseAsync(_postgresDatabase).GetAwaiter().GetResult();
    }
}
