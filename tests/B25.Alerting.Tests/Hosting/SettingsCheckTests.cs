using B25.Alerting.Delivery.Email;
using B25.Alerting.Hosting;
using B25.Alerting.Storage;
using Microsoft.Extensions.Configuration;

namespace B25.Alerting.Tests.Hosting;

/// <summary>Every known section is checked against its options class before anything is built.</summary>
public sealed class SettingsCheckTests
{
    private static SettingsReport Check(params (string Key, string Value)[] settings) =>
        SettingsCheck.Check(new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build());

    [Fact]
    public void Shipped_appsettings_are_clean()
    {
        var config = new ConfigurationBuilder().AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json")).Build();
        var report = SettingsCheck.Check(config);
        Assert.Empty(report.Errors);
        Assert.Empty(report.UnknownKeys);
    }

    [Theory]
    [InlineData("Bus:Transport", "Kafka", "Bus:Transport=Kafka: expected InMemory or RabbitMq")]
    [InlineData("Storage:Provider", "MySql", "Storage:Provider=MySql: expected Sqlite or Postgres")]
    [InlineData("Smtp:Security", "Tls", "Smtp:Security=Tls: expected None, StartTls or SslOnConnect")]
    [InlineData("Slack:RequestTimeout", "10s", "Slack:RequestTimeout=10s: not a TimeSpan: use [d.]hh:mm:ss[.fff], e.g. 00:00:10 for ten seconds")]
    [InlineData("Enrichment:Timeout", "1000", "Enrichment:Timeout=1000: expected 00:00:00.010 to 00:01:00")]
    [InlineData("Slack:RequestTimeout", "00:10:00", "Slack:RequestTimeout=00:10:00: expected 00:00:01 to 00:05:00")]
    [InlineData("Bus:Partitions", "eight", "Bus:Partitions=eight: expected a whole number")]
    [InlineData("Bus:Partitions", "0", "Bus:Partitions=0: expected 1 to 256")]
    [InlineData("Slack:MessagesPerSecondPerChannel", "fast", "Slack:MessagesPerSecondPerChannel=fast: expected a number (a dot for decimals)")]
    [InlineData("RiskManager:DryRun", "yes", "RiskManager:DryRun=yes: expected true or false")]
    [InlineData("Smtp:Port", "70000", "Smtp:Port=70000: expected 1 to 65535")]
    [InlineData("Routing:Routes:0:Continue", "maybe", "Routing:Routes:0:Continue=maybe: expected true or false")]
    public void A_bad_value_is_named_with_its_key_value_and_what_is_allowed(string key, string value, string expected)
    {
        var report = Check((key, value));
        Assert.Equal(expected, Assert.Single(report.Errors));
        Assert.Equal($"Settings: {expected} (not starting)", report.ErrorLine);
    }

    [Fact]
    public void RabbitMq_without_a_uri_is_refused_without_echoing_the_uri()
    {
        var report = Check(("Bus:Transport", "RabbitMq"), ("Bus:RabbitMq:Uri", "http://guest:s3cret@host"));
        var error = Assert.Single(report.Errors);
        Assert.StartsWith("Bus:Transport is RabbitMq but Bus:RabbitMq:Uri", error);
        Assert.DoesNotContain("s3cret", error);
    }

    [Fact]
    public void Secrets_are_never_shown_even_when_wrong()
    {
        Assert.True(SettingsCheck.IsSecret("Slack:BotToken"));
        Assert.True(SettingsCheck.IsSecret("Smtp:Password"));
        Assert.True(SettingsCheck.IsSecret("Storage:ConnectionString"));
        Assert.True(SettingsCheck.IsSecret("PagerDuty:RoutingKeys:trading"));
        Assert.True(SettingsCheck.IsSecret("Bus:RabbitMq:Uri"));
        Assert.False(SettingsCheck.IsSecret("Bus:Transport"));
    }

    [Fact]
    public void Unknown_keys_in_known_sections_are_reported_and_open_maps_are_not()
    {
        var report = Check(
            ("Slack:BotTokne", "xoxb-1"),
            ("Routing:Routes:0:Matcher", "a=\"b\""),
            ("Routing:Routes:0:Slack:Chanel", "#x"),
            ("PagerDuty:RoutingKeys:trading", "abc"),
            ("Grafana:Dashboards:market-data", "uid-1"),
            ("Logging:LogLevel:Default", "Warning"),
            ("SomethingElse:Key", "1"));
        Assert.Empty(report.Errors);
        Assert.Equal(["Slack:BotTokne", "Routing:Routes:0:Matcher", "Routing:Routes:0:Slack:Chanel"], report.UnknownKeys);
    }

    [Theory]
    [InlineData("notanaddress", false)]
    [InlineData("alerts@", false)]
    [InlineData("@b25.example", false)]
    [InlineData("alerts@b25.example", true)]
    [InlineData("B25 Alerting <alerts@b25.example>", true)]
    public void Smtp_From_must_be_a_whole_mail_address(string from, bool accepted)
    {
        var result = new SmtpOptionsValidator().Validate(null, new SmtpOptions { Host = "relay", From = from });
        Assert.Equal(accepted, result.Succeeded);
        if (!accepted) Assert.Contains($"Smtp:From={from}: expected a mail address", result.FailureMessage);
    }

    [Theory]
    [InlineData("Data Source=b25-alerting.db", "/srv/app/b25-alerting.db")]
    [InlineData("Data Source=data/state.db;Cache=Shared", "/srv/app/data/state.db")]
    [InlineData("Data Source=/var/lib/b25/b25.db", "/var/lib/b25/b25.db")]
    public void A_relative_sqlite_file_is_anchored_to_the_service_folder_not_the_working_folder(string connectionString, string file)
    {
        var anchored = SqliteLocation.Anchor(StorageProviderKind.Sqlite, connectionString, "/srv/app");
        Assert.Equal(file, new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(anchored).DataSource);
    }

    [Fact]
    public void In_memory_and_postgres_connection_strings_are_left_alone()
    {
        Assert.Equal("Data Source=:memory:", SqliteLocation.Anchor(StorageProviderKind.Sqlite, "Data Source=:memory:", "/srv/app"));
        Assert.Equal("Host=db;Database=x", SqliteLocation.Anchor(StorageProviderKind.Postgres, "Host=db;Database=x", "/srv/app"));
    }

    [Fact]
    public void Standard_listen_settings_are_honoured_and_the_default_is_loopback_8080()
    {
        static IConfiguration Config(params (string, string)[] s) =>
            new ConfigurationBuilder().AddInMemoryCollection(s.Select(x => new KeyValuePair<string, string?>(x.Item1, x.Item2))).Build();

        Assert.False(ListenAddresses.IsConfigured(Config()));
        Assert.Equal("127.0.0.1:8080", Assert.Single(ListenAddresses.Endpoints(Config())).Endpoint.ToString());
        Assert.True(ListenAddresses.IsConfigured(Config(("urls", "http://127.0.0.1:18093"))));
        Assert.Equal("127.0.0.1:18093", Assert.Single(ListenAddresses.Endpoints(Config(("urls", "http://127.0.0.1:18093")))).Endpoint.ToString());
        Assert.True(ListenAddresses.IsConfigured(Config(("http_ports", "8080"))));
        Assert.Equal("[::]:8080", Assert.Single(ListenAddresses.Endpoints(Config(("http_ports", "8080")))).Endpoint.ToString());
        Assert.True(ListenAddresses.IsConfigured(Config(("Kestrel:Endpoints:Http:Url", "http://localhost:9000"))));
    }

    [Fact]
    public async Task An_empty_recipient_from_an_unset_compose_variable_is_no_recipient()
    {
        // compose passes Smtp__To__0=${SMTP_TO:-}: empty while email is off.
        using var factory = new B25.Alerting.Tests.Support.AlertingFactory(null, new() { ["Smtp:To:0"] = "", ["Smtp:Host"] = "" });
        Assert.Equal(System.Net.HttpStatusCode.OK, (await factory.CreateClient().GetAsync("/health/live")).StatusCode);
    }
}
