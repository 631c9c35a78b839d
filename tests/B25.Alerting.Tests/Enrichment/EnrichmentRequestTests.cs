using B25.Alerting.Delivery;
using B25.Alerting.Enrichment;

namespace B25.Alerting.Tests.Enrichment;

public sealed class EnrichmentRequestTests
{
    [Fact]
    public void The_request_of_an_incident_view_has_its_common_labels_times_and_generator_urls()
    {
        var startsAt = new DateTimeOffset(2026, 12, 1, 9, 58, 3, 120, TimeSpan.Zero);
        var common = new Dictionary<string, string> { ["alertname"] = "OrderBookStale", ["service"] = "market-data" };
        var view = new IncidentView("inc-1", "trading", "{}:{alertname=\"OrderBookStale\"}", "open", 3, startsAt, null,
            new Dictionary<string, string> { ["alertname"] = "OrderBookStale" }, common, new Dictionary<string, string>(), "http://alertmanager:9093", 1, 1,
        [
            new AlertView("f1", startsAt.ToString("O"), "firing", null,
                new Dictionary<string, string>(common) { ["symbol"] = "BTCUSDT" }, new Dictionary<string, string>(), "http://prometheus:9090/graph?g0.expr=x+%3E+1"),
            new AlertView("f2", startsAt.AddMinutes(1).ToString("O"), "resolved", startsAt.AddMinutes(4).ToString("O"),
                new Dictionary<string, string>(common) { ["symbol"] = "ETHUSDT" }, new Dictionary<string, string>(), ""),
        ]);

        var request = EnrichmentRequest.From(view);

        Assert.Equal("inc-1", request.IncidentId);
        Assert.Same(common, request.GroupLabels);
        Assert.Equal(startsAt, request.Alerts[0].StartsAt);
        Assert.True(request.Alerts[0].IsFiring);
        Assert.Null(request.Alerts[0].EndsAt);
        Assert.Equal("market-data", request.Alerts[0].Service);
        Assert.Equal("OrderBookStale", request.Alerts[0].AlertName);
        Assert.False(request.Alerts[1].IsFiring);
        Assert.Equal(startsAt.AddMinutes(4), request.Alerts[1].EndsAt);
        Assert.Equal("", request.Alerts[1].GeneratorUrl);
    }
}
