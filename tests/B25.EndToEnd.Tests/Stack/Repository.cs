using System.Reflection;

namespace B25.EndToEnd.Tests.Stack;

/// <summary>Where the repository and the built services are.</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>The configuration this test was built in; the referenced services were built in the same one.</summary>
    public static string BuildConfiguration { get; } =
        typeof(Repository).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "BuildConfiguration").Value!;

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>The dll of a service project, built next to its sources by this test project's build.</summary>
    public static string ServiceDll(string project)
    {
        var dll = PathOf("src", project, "bin", BuildConfiguration, "net10.0", project + ".dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException(
                $"{dll} is missing: build the test project (it builds src/{project}) with -c {BuildConfiguration}", dll);
        }

        return dll;
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

        throw new InvalidOperationException("B25.Alerting.sln not found above " + AppContext.BaseDirectory);
    }
}
