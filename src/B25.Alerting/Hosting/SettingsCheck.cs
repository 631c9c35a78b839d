using System.Collections;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using B25.Alerting.Delivery.Email;
using B25.Alerting.Delivery.PagerDuty;
using B25.Alerting.Delivery.Presentation;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Enrichment;
using B25.Alerting.Enrichment.Logs;
using B25.Alerting.Enrichment.PromQl;
using B25.Alerting.Pipeline;
using B25.Alerting.RiskManager;
using B25.Alerting.Routing;
using B25.Alerting.Runbooks;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;

namespace B25.Alerting.Hosting;

/// <summary>What is wrong with the settings (the start is refused) and what is unknown (a warning at start).</summary>
internal sealed record SettingsReport(IReadOnlyList<string> Errors, IReadOnlyList<string> UnknownKeys)
{
    /// <summary>The one line a refused start prints.</summary>
    public string ErrorLine => "Settings: " + string.Join("; ", Errors) + " (not starting)";
}

/// <summary>
/// Checks every known section of the configuration against its options class before anything is built: a
/// value that does not convert, or breaks a rule of the class, is named with its key and what is allowed,
/// instead of surfacing later as a binder exception and a stack trace. Keys the class does not have
/// (<c>Slack__BotTokne</c>) would be ignored silently by the binder: they are reported.
/// </summary>
internal static class SettingsCheck
{
    public static readonly IReadOnlyList<(string Section, Type Type)> Sections =
    [
        (ServiceOptions.Section, typeof(ServiceOptions)),
        (WebhookOptions.Section, typeof(WebhookOptions)),
        (StorageOptions.Section, typeof(StorageOptions)),
        (BusOptions.Section, typeof(BusOptions)),
        (SlackOptions.Section, typeof(SlackOptions)),
        (TemplateOptions.Section, typeof(TemplateOptions)),
        (RunbookOptions.Section, typeof(RunbookOptions)),
        (RoutingOptions.Section, typeof(RoutingOptions)),
        (PagerDutyOptions.Section, typeof(PagerDutyOptions)),
        (SmtpOptions.Section, typeof(SmtpOptions)),
        (RiskManagerOptions.Section, typeof(RiskManagerOptions)),
        (WatchdogOptions.Section, typeof(WatchdogOptions)),
        (PresentationOptions.Section, typeof(PresentationOptions)),
        (EnrichmentOptions.Section, typeof(EnrichmentOptions)),
        (PrometheusOptions.Section, typeof(PrometheusOptions)),
        (LokiOptions.Section, typeof(LokiOptions)),
        (Enrichment.Grafana.GrafanaOptions.Section, typeof(Enrichment.Grafana.GrafanaOptions)),
    ];

    public static SettingsReport Check(IConfiguration configuration)
    {
        var errors = new List<string>();
        var unknown = new List<string>();
        foreach (var (name, type) in Sections)
        {
            var section = configuration.GetSection(name);
            var before = errors.Count;
            if (section.Exists()) CheckObject(section, type, errors, unknown);
            if (errors.Count > before) continue; // a value that does not convert cannot be bound, nor its rules checked

            object? bound;
            try
            {
                bound = section.Get(type) ?? Activator.CreateInstance(type);
            }
            catch (InvalidOperationException ex)
            {
                errors.Add($"{name}: {ex.Message}");
                continue;
            }
            if (bound is not null) CheckRules(section, bound, errors);
        }
        return new SettingsReport(errors, unknown);
    }

    private static void CheckObject(IConfigurationSection section, Type type, List<string> errors, List<string> unknown)
    {
        var properties = Properties(type);
        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property))
                unknown.Add(child.Path);
            else
                CheckValue(child, property.PropertyType, errors, unknown);
        }
    }

    private static void CheckValue(IConfigurationSection section, Type type, List<string> errors, List<string> unknown)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (IsScalar(target))
        {
            if (section.Value is { } value) CheckScalar(section.Path, value, target, errors);
            else if (section.GetChildren().Any()) errors.Add($"{section.Path}: expected one value, found a section");
            return;
        }
        if (DictionaryValueType(target) is { } valueType)
        {
            foreach (var child in section.GetChildren()) CheckValue(child, valueType, errors, unknown);
            return;
        }
        if (ListItemType(target) is { } itemType)
        {
            foreach (var child in section.GetChildren())
            {
                if (!int.TryParse(child.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                    errors.Add($"{child.Path}: expected a list index (0, 1, ...), not '{child.Key}'");
                else
                    CheckValue(child, itemType, errors, unknown);
            }
            return;
        }
        if (section.Value is { Length: > 0 } && !section.GetChildren().Any())
        {
            errors.Add($"{section.Path}: expected a section, found a single value");
            return;
        }
        CheckObject(section, target, errors, unknown);
    }

    private static void CheckScalar(string path, string value, Type type, List<string> errors)
    {
        if (type == typeof(string)) return;
        // The binder leaves a value type at its default for an empty string.
        if (value.Length == 0) return;
        var shown = Shown(path, value);
        if (type.IsEnum)
        {
            var names = Enum.GetNames(type);
            if (!names.Any(n => string.Equals(n, value.Trim(), StringComparison.OrdinalIgnoreCase)))
                errors.Add($"{path}={shown}: expected {OneOf(names)}");
            return;
        }
        if (type == typeof(TimeSpan))
        {
            if (!TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out _))
                errors.Add($"{path}={shown}: not a TimeSpan: use [d.]hh:mm:ss[.fff], e.g. 00:00:10 for ten seconds");
            return;
        }
        if (type == typeof(bool))
        {
            if (!bool.TryParse(value, out _)) errors.Add($"{path}={shown}: expected true or false");
            return;
        }
        try
        {
            TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or NotSupportedException or OverflowException
                                       || ex.InnerException is FormatException or OverflowException)
        {
            var expected = type == typeof(int) || type == typeof(long) ? "a whole number"
                : type == typeof(double) || type == typeof(decimal) || type == typeof(float) ? "a number (a dot for decimals)"
                : $"a {type.Name}";
            errors.Add($"{path}={shown}: expected {expected}");
        }
    }

    /// <summary>Data annotations ([Range], [Required], [Url]) and IValidatableObject, reported with key and value.</summary>
    private static void CheckRules(IConfigurationSection section, object options, List<string> errors)
    {
        foreach (var property in Properties(options.GetType()).Values.Distinct())
        {
            var key = $"{section.Path}:{property.Name}";
            var value = property.GetValue(options);
            var typed = section[property.Name]; // as the operator wrote it (1000, not 1000.00:00:00)
            foreach (var attribute in property.GetCustomAttributes<ValidationAttribute>())
            {
                if (attribute.IsValid(value)) continue;
                var shown = value is null ? "(empty)" : Shown(key, typed ?? Format(value));
                errors.Add(attribute switch
                {
                    RangeAttribute range => $"{key}={shown}: expected {Format(range.Minimum)} to {Format(range.Maximum)}",
                    RequiredAttribute => $"{key} is required",
                    UrlAttribute => $"{key}={shown}: expected an absolute http:// or https:// URL",
                    _ => $"{key}={shown}: {attribute.FormatErrorMessage(property.Name)}",
                });
            }
            if (value is not null && !IsScalar(value.GetType()) && value is not IEnumerable
                && property.PropertyType.IsClass && property.PropertyType.Namespace?.StartsWith("B25.", StringComparison.Ordinal) == true)
                CheckRules(section.GetSection(property.Name), value, errors);
        }
        if (options is IValidatableObject validatable)
            foreach (var result in validatable.Validate(new ValidationContext(options)))
                if (result.ErrorMessage is { } message) errors.Add(message);
    }

    private static Dictionary<string, PropertyInfo> Properties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && (p.CanWrite || !IsScalar(p.PropertyType)) && p.GetMethod is not null)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    private static bool IsScalar(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan)
               || type == typeof(Uri) || type == typeof(Guid) || type == typeof(DateTimeOffset) || type == typeof(DateTime);
    }

    private static Type? DictionaryValueType(Type type) =>
        type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(Dictionary<,>) || type.GetGenericTypeDefinition() == typeof(IDictionary<,>)
                               || type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>))
            ? type.GetGenericArguments()[1]
            : null;

    private static Type? ListItemType(Type type)
    {
        if (type.IsArray) return type.GetElementType();
        if (!type.IsGenericType) return null;
        var definition = type.GetGenericTypeDefinition();
        return definition == typeof(List<>) || definition == typeof(IList<>) || definition == typeof(IEnumerable<>)
               || definition == typeof(IReadOnlyList<>) || definition == typeof(ICollection<>)
            ? type.GetGenericArguments()[0]
            : null;
    }

    private static string OneOf(IReadOnlyList<string> names) =>
        names.Count == 1 ? names[0] : string.Join(", ", names.Take(names.Count - 1)) + " or " + names[^1];

    private static string Format(object value) => value switch
    {
        TimeSpan t => (t.Days > 0 ? $"{t.Days}." : "") + t.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture)
                      + (t.Ticks % TimeSpan.TicksPerSecond == 0 ? "" : "." + (t.Ticks % TimeSpan.TicksPerSecond / TimeSpan.TicksPerMillisecond).ToString("D3", CultureInfo.InvariantCulture)),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>Secrets never reach the log, not even when they are wrong.</summary>
    public static bool IsSecret(string path)
    {
        var last = path[(path.LastIndexOf(':') + 1)..];
        return last.Contains("Token", StringComparison.OrdinalIgnoreCase)
               || last.Contains("Password", StringComparison.OrdinalIgnoreCase)
               || last.Contains("ConnectionString", StringComparison.OrdinalIgnoreCase)
               || path.Contains("RoutingKey", StringComparison.OrdinalIgnoreCase)
               || path.StartsWith("Bus:RabbitMq:Uri", StringComparison.OrdinalIgnoreCase);
    }

    private static string Shown(string path, string value) => IsSecret(path) ? "(secret, not shown)" : value;
}
