using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Pipeline;
using B25.Alerting.Routing;
using B25.Alerting.Storage;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Hosting;

/// <summary>One line at start saying what is on: storage, transport, channels and their targets, routes. No secrets.</summary>
internal static class StartSummary
{
    public static string Describe(IServiceProvider services, IStorageProvider storage, string replica, Router router)
    {
        var bus = services.GetRequiredService<IOptions<BusOptions>>().Value;
        var slack = services.GetRequiredService<IOptions<SlackOptions>>().Value;
        var parts = new List<string>
        {
            $"storage {storage.Kind} {storage.Location} (replica {replica})",
            $"bus {bus.Transport}" + (bus.Transport != BusTransport.RabbitMq ? ""
                : $" queue {bus.RabbitMq.Queue}, " + (bus.ApplyLocallyAfter > TimeSpan.Zero
                    ? $"applying the journal itself while the bus is down (after {bus.ApplyLocallyAfter})"
                    : "pages wait for the bus while it is down (Bus:ApplyLocallyAfter 0)")),
        };
        foreach (var channel in services.GetServices<IChannelNotifier>().OrderBy(c => c.Channel, StringComparer.Ordinal))
        {
            if (channel.DisabledReason is { } reason)
            {
                parts.Add($"{channel.Channel} off ({reason})");
                continue;
            }
            var targets = router.Routes.SelectMany(r => r.Targets).Where(t => t.Channel == channel.Channel)
                .Select(t => t.Target).Distinct(StringComparer.Ordinal).ToList();
            var mode = channel.Channel == "slack" && !slack.Enabled ? " (log only: Slack:BotToken is empty)" : "";
            parts.Add($"{channel.Channel} on{mode}" + (targets.Count > 0 ? $": {string.Join(" ", targets)}"
                : channel.EveryIncident ? ": every incident" : ": no route uses it"));
        }
        parts.Add("routes " + string.Join(" | ", router.Routes.Select(Describe)));
        return string.Join("; ", parts);
    }

    private static string Describe(CompiledRoute route)
    {
        var when = new List<string>();
        if (route.Receiver is { } receiver) when.Add(receiver.ToString());
        when.AddRange(route.Matchers.Select(m => m.ToString()));
        var targets = route.Targets.Count == 0 ? "nothing (its channels are off)" : string.Join(" ", route.Targets.Select(t => $"{t.Channel}:{t.Target}"));
        return $"{route.Name} {{{string.Join(",", when)}}} -> {targets}{(route.Continue ? " (continue)" : "")}";
    }
}
