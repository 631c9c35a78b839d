using System.Reflection;
using Microsoft.Extensions.Logging;

namespace B25.Alerting.Tests.Observability;

/// <summary>An event id names one kind of log line: operators filter and alert on it (Loki, the tests), so no two messages share one.</summary>
public sealed class LogEventIdTests
{
    [Fact]
    public void Every_log_message_of_the_service_has_an_event_id_of_its_own()
    {
        var messages = typeof(Program).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Select(m => (Method: $"{m.DeclaringType!.Name}.{m.Name}", Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is not null)
            .ToList();
        Assert.True(messages.Count > 50, $"only {messages.Count} log messages found: the scan is broken");

        var shared = messages.GroupBy(m => m.Attribute!.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Method))}").ToList();
        Assert.True(shared.Count == 0, "event ids used by more than one message: " + string.Join("; ", shared));
    }
}
