using Microsoft.Extensions.Options;

namespace B25.Alerting.Routing;

/// <summary>A delivery target: one channel (slack, ...) and one address in it.</summary>
internal readonly record struct DeliveryTarget(string Channel, string Target);

internal sealed record CompiledRoute(string Name, Matcher? Receiver, IReadOnlyList<Matcher> Matchers, bool Continue, IReadOnlyList<DeliveryTarget> Targets,
    EscalationOptions? Escalation = null)
{
    public bool Matches(string receiver, IReadOnlyDictionary<string, string> labels)
    {
        // Asked per alert for every route in turn: no dictionary, closure or enumerator allocated here.
        if (Receiver is not null && !Receiver.MatchesValue(receiver)) return false;
        for (var i = 0; i < Matchers.Count; i++)
            if (!Matchers[i].Matches(labels)) return false;
        return true;
    }
}

internal sealed partial class Router
{
    public Router(IOptions<RoutingOptions> options)
        : this(options, [], Microsoft.Extensions.Logging.Abstractions.NullLogger<Router>.Instance)
    {
    }

    /// <summary>Compiles the routes; targets of a channel that is off are dropped, with one log line per channel.</summary>
    public Router(IOptions<RoutingOptions> options, IEnumerable<Delivery.IChannelNotifier> channels, ILogger<Router> logger)
    {
        var compiled = Compile(options.Value, out var errors);
        var byName = channels.ToDictionary(c => c.Channel);
        foreach (var route in compiled)
            foreach (var target in route.Targets)
                if (byName.TryGetValue(target.Channel, out var channel) && channel.DisabledReason is null && channel.CheckTarget(target.Target) is { } problem)
                    errors.Add($"Routing route '{route.Name}': {problem}");
        if (errors.Count > 0)
            throw new OptionsValidationException(RoutingOptions.Section, typeof(RoutingOptions), errors);

        foreach (var channel in byName.Values.Where(c => c.DisabledReason is not null))
        {
            var affected = compiled.Where(r => r.Targets.Any(t => t.Channel == channel.Channel)).Select(r => r.Name).ToList();
            if (affected.Count > 0) LogChannelOff(logger, channel.Channel, channel.DisabledReason!, string.Join(", ", affected));
        }
        Routes = byName.Count == 0
            ? compiled
            : compiled.Select(r => r with
            {
                Targets = r.Targets.Where(t => byName.TryGetValue(t.Channel, out var c) && c.DisabledReason is null).ToList(),
            }).ToList();
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Channel {Channel} is off ({Reason}): routes {Routes} deliver to their other targets only")]
    private static partial void LogChannelOff(ILogger logger, string channel, string reason, string routes);

    public IReadOnlyList<CompiledRoute> Routes { get; }

    /// <summary>The escalation of the first route (in routing order, honouring continue) that has one and that one of the alerts matches; null when none.</summary>
    public EscalationOptions? EscalationFor(string receiver, IEnumerable<IReadOnlyDictionary<string, string>> alertLabels)
    {
        EscalationOptions? found = null;
        var foundAt = int.MaxValue;
        foreach (var labels in alertLabels)
        {
            for (var i = 0; i < Routes.Count && i < foundAt; i++)
            {
                var route = Routes[i];
                if (!route.Matches(receiver, labels)) continue;
                if (route.Escalation is not null)
                {
                    found = route.Escalation;
                    foundAt = i;
                    break;
                }
                if (!route.Continue) break;
            }
        }
        return found;
    }

    /// <summary>The targets of one alert: first matching route wins unless it says continue.</summary>
    public IEnumerable<DeliveryTarget> TargetsFor(string receiver, IReadOnlyDictionary<string, string> labels)
    {
        foreach (var route in Routes)
        {
            if (!route.Matches(receiver, labels)) continue;
            foreach (var target in route.Targets) yield return target;
            if (!route.Continue) yield break;
        }
    }

    public static IReadOnlyList<CompiledRoute> Compile(RoutingOptions options, out List<string> errors)
    {
        errors = [];
        var routes = new List<CompiledRoute>();
        if (options.Routes.Count == 0)
            errors.Add("Routing:Routes is empty: at least one route is needed, or every page would be dropped.");
        for (var i = 0; i < options.Routes.Count; i++)
        {
            var route = options.Routes[i];
            var name = string.IsNullOrWhiteSpace(route.Name) ? $"route {i}" : route.Name;
            var where = $"Routing:Routes:{i} ({name})";
            var matchers = new List<Matcher>();
            foreach (var text in route.Matchers)
            {
                try { matchers.AddRange(Matcher.ParseAll(text)); }
                catch (FormatException ex) { errors.Add($"{where}: {ex.Message}"); }
            }
            Matcher? receiver = null;
            if (!string.IsNullOrWhiteSpace(route.Receiver))
            {
                var text = route.Receiver.TrimStart();
                try
                {
                    receiver = text.StartsWith('=') || text.StartsWith("!=") || text.StartsWith("=~") || text.StartsWith("!~")
                        ? Matcher.Parse("receiver" + text)
                        : Matcher.Parse($"receiver=\"{text.Replace("\\", "\\\\").Replace("\"", "\\\"")}\"");
                }
                catch (FormatException ex) { errors.Add($"{where}: Receiver: {ex.Message}"); }
            }
            var targets = new List<DeliveryTarget>();
            if (route.Slack is not null)
            {
                if (string.IsNullOrWhiteSpace(route.Slack.Channel))
                    errors.Add($"{where}: Slack:Channel is empty.");
                else
                    targets.Add(new DeliveryTarget("slack", route.Slack.Channel.Trim()));
            }
            if (route.PagerDuty is not null)
            {
                if (string.IsNullOrWhiteSpace(route.PagerDuty.RoutingKey))
                    errors.Add($"{where}: PagerDuty:RoutingKey (the key's name) is empty; use \"default\" for PagerDuty:RoutingKey.");
                else
                    targets.Add(new DeliveryTarget("pagerduty", route.PagerDuty.RoutingKey.Trim()));
            }
            if (route.Email is not null)
            {
                if (route.Email.To.Count == 0) targets.Add(new DeliveryTarget("email", "default"));
                foreach (var address in route.Email.To)
                {
                    if (!System.Net.Mail.MailAddress.TryCreate(address, out _))
                        errors.Add($"{where}: Email:To has '{address}', which is not a mail address.");
                    else
                        targets.Add(new DeliveryTarget("email", address.Trim()));
                }
            }
            if (route.RiskManager is { EmergencyStop: true })
                targets.Add(new DeliveryTarget("risk-manager", "risk-manager"));
            if (targets.Count == 0)
                errors.Add($"{where}: the route has no target (set Slack:Channel, PagerDuty, Email or RiskManager:EmergencyStop).");
            if (route.Escalation is { } escalation)
            {
                if (escalation.After <= TimeSpan.Zero) errors.Add($"{where}: Escalation:After must be more than zero.");
                if (escalation.RepeatEvery < TimeSpan.FromMinutes(1)) errors.Add($"{where}: Escalation:RepeatEvery must be at least one minute.");
                if (escalation.Max is < 1 or > 100) errors.Add($"{where}: Escalation:Max must be between 1 and 100.");
                if (string.IsNullOrWhiteSpace(escalation.Mention))
                    errors.Add($"{where}: Escalation:Mention is empty (e.g. \"<!subteam^S0123>\" for a user group, \"<@U0123>\" for a person, \"<!here>\").");
            }
            routes.Add(new CompiledRoute(name, receiver, matchers, route.Continue, targets, route.Escalation));
        }
        return routes;
    }
}

internal sealed class RoutingOptionsValidator : IValidateOptions<RoutingOptions>
{
    public ValidateOptionsResult Validate(string? name, RoutingOptions options)
    {
        Router.Compile(options, out var errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
