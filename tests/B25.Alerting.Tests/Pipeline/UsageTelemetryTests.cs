using B25.Alerting.Tests.Support;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Pipeline;

/// <summary>The bus never calls out to its vendor: MassTransit's usage telemetry (a report to masstransit.io) is off.</summary>
public sealed class UsageTelemetryTests
{
    [Theory]
    [InlineData("InMemory")]
    [InlineData("RabbitMq")]
    public void MassTransit_usage_telemetry_is_off(string transport)
    {
        using var slack = new SlackStandIn();
        // The bus is not started here: only its registration is read.
        using var factory = new AlertingFactory(slack, new Dictionary<string, string?>
        {
            ["Bus:Transport"] = transport,
            ["Bus:RabbitMq:Uri"] = "amqp://guest:guest@127.0.0.1:1/",
        });
        using var scope = factory.Services.CreateScope();
        Assert.False(scope.ServiceProvider.GetRequiredService<IOptions<UsageTelemetryOptions>>().Value.Enabled);
    }
}
