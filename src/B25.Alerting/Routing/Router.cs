using Microsoft.Extensions.Options;

namespace B25.Alerting.Routing;

/// <summary>A delivery target: one channel (slack, ...) and one address in it.</summary>
internal readonly record struct DeliveryTarget(string Channel, string Target);

internal sealed record CompiledRoute(string Name, Matcher? Receiver, IReadOnlyList<Matcher> Matchers, bool Continue, IReadOnlyList<DeliveryTarget> Targets)
{
    public bool Matches(string receiver, IReadOnlyDictionary<string, string> labels) =>
        (Receiver is null || Receiver.Matches(new Dictionary<string, string> { ["receiver"] = receiver }))
        && Matchers.All(m => m.Matches(labels));
}

internal sealed class Router
{
    public Router(IOptions<RoutingOptions> options)
    {
        Routes = Compile(options.Value, out var errors);
        if (errors.Count > 0)
            throw new OptionsValidationException(RoutingOptions.Section, typeof(RoutingOptions), errors);
    }

    public IReadOnlyList<CompiledRoute> Routes { get; }

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
                try { matchers.Add(Matcher.Parse(text)); }
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
            if (targets.Count == 0)
                errors.Add($"{where}: the route has no target (set Slack:Channel).");
            routes.Add(new CompiledRoute(name, receiver, matchers, route.Continue, targets));
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
