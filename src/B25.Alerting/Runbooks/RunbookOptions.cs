using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Runbooks;

internal sealed class RunbookOptions
{
    public const string Section = "Runbooks";

    /// <summary>Folder of the runbooks (<c>&lt;AlertName&gt;.md</c>); relative paths resolve against the service's folder,
    /// where the build copies the repository's <c>docs/runbooks</c>.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Path { get; set; } = "runbooks";

    /// <summary>Grafana's base URL (the setting Grafana:Url, not bound from this section): what a runbook's
    /// <c>grafana:/d/&lt;uid&gt;</c> links point at. Empty: those links show as text.</summary>
    public string? GrafanaUrl { get; set; }

    public string ResolvedPath => System.IO.Path.IsPathRooted(Path) ? Path : System.IO.Path.Combine(AppContext.BaseDirectory, Path);
}
