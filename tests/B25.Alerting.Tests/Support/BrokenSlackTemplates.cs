namespace B25.Alerting.Tests.Support;

/// <summary>
/// A copy of the service's templates whose Slack incident template renders no valid blocks (a page then goes out in its
/// minimal form, counted as a fallback); set <c>Templates:Path</c> to <see cref="Path"/>. Deleted on dispose.
/// </summary>
public sealed class BrokenSlackTemplates : IDisposable
{
    public BrokenSlackTemplates()
    {
        var from = System.IO.Path.Combine(AppContext.BaseDirectory, "templates");
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = System.IO.Path.Combine(Path, System.IO.Path.GetRelativePath(from, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        File.WriteAllText(System.IO.Path.Combine(Path, "slack", "incident.sbn"), """[{"type": "header", """);
    }

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"b25-templates-{Guid.NewGuid():N}");

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
