using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Enrichment.PromQl;

/// <summary>The Prometheus section: where PromQL context is queried.</summary>
internal sealed class PrometheusOptions : IValidatableObject
{
    public const string Section = "Prometheus";

    /// <summary>Base URL of the Prometheus HTTP API (e.g. <c>http://prometheus:9090</c>); empty: no PromQL context.</summary>
    public string? Url { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(Url);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!SourceUrl.IsValid(Url))
            yield return new ValidationResult("Prometheus:Url must be an absolute http(s) URL or empty.", [nameof(Url)]);
    }
}
