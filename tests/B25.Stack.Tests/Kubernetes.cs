using YamlDotNet.RepresentationModel;

namespace B25.Stack.Tests;

/// <summary>compose/kubernetes/: the service's manifests, one object per file, read as data.</summary>
internal sealed class Kubernetes
{
    public static string Dir => Repo.PathOf("compose", "kubernetes");

    public YamlMappingNode Kustomization { get; } = Repo.LoadYaml(Path.Combine(Dir, "kustomization.yaml"));

    /// <summary>Every manifest the kustomization applies, by file name.</summary>
    public IReadOnlyDictionary<string, YamlMappingNode> Resources { get; }

    /// <summary>The example Secret: its keys are the ones the Deployment reads; its values are placeholders.</summary>
    public YamlMappingNode ExampleSecret { get; } = Repo.LoadYaml(Path.Combine(Dir, "secret.example.yaml"));

    public Kubernetes()
    {
        Resources = Kustomization.Items("resources").Select(r => r.Str()!)
            .ToDictionary(f => f, f => Repo.LoadYaml(Path.Combine(Dir, f)));
    }

    public YamlMappingNode Single(string kind) => Resources.Values.Single(r => r.Str("kind") == kind);

    public YamlMappingNode Deployment => Single("Deployment");

    public YamlNode PodSpec => Deployment.Get("spec").Get("template").Get("spec")!;

    public YamlNode Container => PodSpec.Items("containers").Single();

    public IReadOnlyDictionary<string, string> PodLabels =>
        Deployment.Get("spec").Get("template").Get("metadata").Entries("labels").ToDictionary(l => l.Key, l => l.Value.Str()!);

    /// <summary>True when every label of the selector's matchLabels is on the Deployment's pods.</summary>
    public bool SelectsThePods(YamlNode? selector) => LabelsOnThePods(selector.Get("matchLabels"));

    /// <summary>True when the labels (a Service's selector, a matchLabels) are all on the Deployment's pods.</summary>
    public bool LabelsOnThePods(YamlNode? labels)
    {
        var match = labels.Entries().ToList();
        return match.Count > 0 && match.All(l => PodLabels.TryGetValue(l.Key, out var v) && v == l.Value.Str());
    }
}
