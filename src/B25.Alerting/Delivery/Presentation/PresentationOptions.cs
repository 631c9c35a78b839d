using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Delivery.Presentation;

/// <summary>How incidents are shown in every channel.</summary>
internal sealed class PresentationOptions
{
    public const string Section = "Presentation";

    /// <summary>
    /// Labels never shown on a message nor used to name an alert, comma-separated: operational labels
    /// every alert of a deployment carries. They stay in the incidents API and in PagerDuty's details.
    /// </summary>
    [Required(AllowEmptyStrings = true)]
    public string HiddenLabels { get; set; } = "job,cluster,environment,tier,prometheus,replica,monitor,alert_role";

    public IReadOnlySet<string> Hidden =>
        HiddenLabels.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
}
