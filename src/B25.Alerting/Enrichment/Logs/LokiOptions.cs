using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;

namespace B25.Alerting.Enrichment.Logs;

/// <summary>
/// The Loki section. The defaults follow compose/promtail/promtail-config.yml: streams carry the compose
/// service as <c>service_name</c> and the normalised level (debug, info, warn, error, fatal) as <c>level</c>.
/// </summary>
internal sealed partial class LokiOptions : IValidatableObject
{
    public const string Section = "Loki";

    /// <summary>Base URL of Loki (e.g. <c>http://loki:3100</c>); empty: no log lines.</summary>
    public string? Url { get; set; }

    /// <summary>The stream label that holds the alert's <c>service</c> label value.</summary>
    [Required]
    public string ServiceLabel { get; set; } = "service_name";

    /// <summary>The stream label that holds the level.</summary>
    [Required]
    public string LevelLabel { get; set; } = "level";

    public static readonly string[] DefaultLevels = ["warn", "error", "fatal"];

    /// <summary>
    /// The levels shown; empty: <see cref="DefaultLevels"/>. (Not initialised with the defaults: the configuration
    /// binder appends to an array that already has items, so a configured list would come after them.)
    /// </summary>
    public string[] Levels { get; set; } = [];

    public IReadOnlyList<string> EffectiveLevels => Levels.Length > 0 ? Levels : DefaultLevels;

    /// <summary>Longer lines are cut (and marked truncated).</summary>
    [Range(40, 10000)]
    public int MaxLineLength { get; set; } = 300;

    public bool Enabled => !string.IsNullOrWhiteSpace(Url);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!SourceUrl.IsValid(Url))
            yield return new ValidationResult("Loki:Url must be an absolute http(s) URL or empty.", [nameof(Url)]);
        foreach (var (name, value) in new[] { (nameof(ServiceLabel), ServiceLabel), (nameof(LevelLabel), LevelLabel) })
            if (!LabelName().IsMatch(value ?? ""))
                yield return new ValidationResult($"Loki:{name} must be a label name ([a-zA-Z_][a-zA-Z0-9_]*).", [name]);
        if (EffectiveLevels.Any(l => string.IsNullOrWhiteSpace(l) || !LevelValue().IsMatch(l)))
            yield return new ValidationResult("Loki:Levels must be level names (letters, digits, '_' and '-').", [nameof(Levels)]);
    }

    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    [GeneratedRegex("^[a-zA-Z0-9_-]+$")]
    private static partial Regex LevelValue();
}
