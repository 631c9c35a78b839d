using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace B25.Stack.Tests;

/// <summary>Paths into the repository, found from the test binary's folder.</summary>
internal static class Repo
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    public static string Root => RootPath.Value;

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    public static string Relative(string path) => Path.GetRelativePath(Root, path).Replace('\\', '/');

    public static YamlMappingNode LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        // Merge keys (`<<: *anchor`) resolved as Docker Compose resolves them: the compose file shares
        // one definition between the alerting replicas.
        stream.Load(new MergingParser(new Parser(reader)));
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new InvalidDataException($"{Relative(path)}: expected a YAML mapping at the top");
        }
        return root;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "B25.Alerting.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException(
            $"No folder holding B25.Alerting.sln above {AppContext.BaseDirectory}");
    }
}
