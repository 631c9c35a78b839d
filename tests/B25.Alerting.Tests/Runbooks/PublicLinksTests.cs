using B25.Alerting.Hosting;
using B25.Alerting.Tests.Support;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Runbooks;

/// <summary>Service:PublicUrl and the links the service writes into messages.</summary>
public sealed class PublicLinksTests
{
    private static PublicLinks Links(string? publicUrl, LogCapture? logs = null) =>
        new(Options.Create(new ServiceOptions { PublicUrl = publicUrl }), new Logger<PublicLinks>(new LoggerFactory(logs is null ? [] : [logs])));

    [Theory]
    [InlineData("https://alerting.b25.example", "/runbooks/HighDrawdown", "https://alerting.b25.example/runbooks/HighDrawdown")]
    [InlineData("https://alerting.b25.example/", "/runbooks/HighDrawdown", "https://alerting.b25.example/runbooks/HighDrawdown")]
    [InlineData("https://alerting.b25.example", "runbooks/HighDrawdown", "https://alerting.b25.example/runbooks/HighDrawdown")]
    [InlineData("https://b25.example/alerting", "/runbooks/HighDrawdown", "https://b25.example/alerting/runbooks/HighDrawdown")]
    [InlineData("https://b25.example/alerting/", "/runbooks/HighDrawdown#actions", "https://b25.example/alerting/runbooks/HighDrawdown#actions")]
    [InlineData("http://127.0.0.1:8080", " /runbooks/X ", "http://127.0.0.1:8080/runbooks/X")]
    [InlineData("https://alerting.b25.example", "/api/incidents/42?x=1", "https://alerting.b25.example/api/incidents/42?x=1")]
    public void A_relative_link_is_made_absolute_against_the_public_url(string publicUrl, string link, string expected) =>
        Assert.Equal(expected, Links(publicUrl).Absolute(link));

    [Theory]
    [InlineData("https://grafana.b25.example/d/b25-market-data?var-service=market-data")]
    [InlineData("http://prometheus:9090/graph?g0.expr=up%20%3D%3D%200")]
    [InlineData("HTTPS://wiki.b25.example/Runbook")]
    public void An_absolute_http_link_passes_unchanged(string link)
    {
        Assert.Equal(link, Links("https://alerting.b25.example").Absolute(link));
        Assert.Equal(link, Links(null).Absolute(link));
    }

    [Theory]
    [InlineData("javascript:alert(1)")]
    [InlineData("JavaScript:alert(document.cookie)")]
    [InlineData("  javascript:alert(1)")]
    [InlineData("java\tscript:alert(1)")]
    [InlineData("java\nscript:alert(1)")]
    [InlineData("data:text/html,<script>alert(1)</script>")]
    [InlineData("vbscript:msgbox(1)")]
    [InlineData("file:///etc/passwd")]
    [InlineData("mailto:oncall@b25.example")]
    [InlineData("//evil.example/runbooks/X")]
    [InlineData("/\\evil.example/runbooks/X")]
    [InlineData("\\\\evil.example\\x")]
    [InlineData("http:evil.example")]
    [InlineData("https://")]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    public void Other_schemes_other_hosts_and_nothing_give_no_link(string? link)
    {
        Assert.Null(Links("https://alerting.b25.example").Absolute(link));
        Assert.Null(Links(null).Absolute(link));
    }

    [Fact]
    public void Without_a_public_url_relative_links_stay_relative_and_the_start_warns()
    {
        var logs = new LogCapture();

        var links = Links(null, logs);

        Assert.Null(links.PublicUrl);
        Assert.Equal("/runbooks/HighDrawdown", links.Absolute("/runbooks/HighDrawdown"));
        var warning = Assert.Single(logs.Warnings);
        Assert.Equal(6001, warning.EventId);
        Assert.Contains("Service:PublicUrl is empty", warning.Message);
        Assert.Contains("will not be clickable", warning.Message);

        Links("https://alerting.b25.example", logs = new LogCapture());
        Assert.Empty(logs.Warnings);
    }

    [Theory]
    [InlineData("https://alerting.b25.example")]
    [InlineData("https://alerting.b25.example/")]
    [InlineData("http://127.0.0.1:8080")]
    [InlineData("https://b25.example/alerting/")]
    [InlineData("")]
    [InlineData(null)]
    public void A_good_public_url_passes_the_start_check(string? publicUrl) =>
        Assert.Null(PublicLinks.CheckPublicUrl(publicUrl));

    [Theory]
    [InlineData("alerting.b25.example", "must be an absolute http or https URL")]
    [InlineData("/alerting", "must be an absolute http or https URL")]
    [InlineData("ftp://alerting.b25.example", "must be an absolute http or https URL")]
    [InlineData("javascript:alert(1)", "must be an absolute http or https URL")]
    [InlineData("https:alerting.b25.example", "must be an absolute http or https URL")]
    [InlineData("https://alerting.b25.example/?x=1", "must not have a query or a fragment")]
    [InlineData("https://alerting.b25.example/#top", "must not have a query or a fragment")]
    [InlineData("https://user:secret@alerting.b25.example", "must not carry a user name or password")]
    [InlineData("https://alerting.b25.example/a b", "contains spaces or control characters")]
    public void A_wrong_public_url_is_named_with_what_is_wrong(string publicUrl, string why)
    {
        var error = PublicLinks.CheckPublicUrl(publicUrl);
        Assert.NotNull(error);
        Assert.StartsWith($"Service:PublicUrl '{publicUrl}' ", error);
        Assert.Contains(why, error);
    }

    [Fact]
    public void A_wrong_public_url_fails_the_start_of_the_service()
    {
        using var folder = new RunbookFolder();
        using var logs = new LogCapture();
        using var factory = new AlertingFactory(slack: null, new() { ["Service:PublicUrl"] = "alerting.b25.example", ["Runbooks:Path"] = folder.Path });
        using var service = factory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<ILoggerProvider>(logs)));

        Assert.ThrowsAny<Exception>(() => service.Services);

        var refusal = Assert.Single(logs.Lines, l => l.Level == LogLevel.Critical);
        Assert.Contains("Service:PublicUrl 'alerting.b25.example' must be an absolute http or https URL", refusal.Message);
    }

    [Fact]
    public void The_service_uses_its_public_url_for_runbook_links()
    {
        using var folder = new RunbookFolder();
        var logs = new LogCapture();
        using var factory = new AlertingFactory(slack: null, new() { ["Service:PublicUrl"] = "https://alerting.b25.example/", ["Runbooks:Path"] = folder.Path });
        using var service = factory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<ILoggerProvider>(logs)));

        var library = service.Services.GetRequiredService<B25.Alerting.Runbooks.RunbookLibrary>();

        Assert.Equal("https://alerting.b25.example/runbooks/OrderBookStale", library.Url("OrderBookStale"));
        Assert.Equal("https://alerting.b25.example/runbooks/OrderBookStale", service.Services.GetRequiredService<PublicLinks>().Absolute("/runbooks/OrderBookStale"));
        Assert.DoesNotContain(logs.Warnings, w => w.EventId == 6001);
    }
}
