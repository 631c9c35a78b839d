using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Runbooks;

internal sealed class RunbookOptions
{
    public const string Section = "Runbooks";

    /// <summary>Folder of the runbooks (<c>&lt;AlertName&gt;.md</c>); relative paths resolve against the service's folder,
    /// where the build copies the repository's <c>docs/runbooks</c>.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Path { get; set; } = "runbooks";

    public string ResolvedPath => System.IO.Path.IsPathRooted(Path) ? Path : System.IO.Path.Combine(AppContext.BaseDirectory, Path);
}
