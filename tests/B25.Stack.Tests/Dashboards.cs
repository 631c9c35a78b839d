using System.Text.Json;
using System.Text.Json.Nodes;

namespace B25.Stack.Tests;

/// <summary>A provisioned dashboard file: grafana/dashboards/&lt;folder&gt;/&lt;file&gt;.json.</summary>
internal sealed record Dashboard(string Path, string Folder, JsonObject Json)
{
    public string Name => Repo.Relative(Path);

    public string Uid => Json["uid"]?.GetValue<string>() ?? "";

    public string Title => Json["title"]?.GetValue<string>() ?? "";

    /// <summary>Every panel, including the ones nested in (collapsed) rows.</summary>
    public IEnumerable<JsonObject> Panels() => Flatten(Json["panels"] as JsonArray);

    public IEnumerable<Query> Queries()
    {
        foreach (var panel in Panels())
        {
            var panelDs = panel["datasource"];
            foreach (var target in (panel["targets"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var ds = target["datasource"] ?? panelDs;
                var expr = target["expr"]?.GetValue<string>();
                if (expr is null) continue;
                yield return new Query(this, panel, DatasourceUid(ds), target["refId"]?.GetValue<string>() ?? "?", expr);
            }
        }
    }

    /// <summary>
    /// PromQL outside panels: Prometheus annotations, and the series selector inside each
    /// label_values(selector, label) variable query.
    /// </summary>
    public IEnumerable<Query> OtherQueries()
    {
        var source = new JsonObject { ["title"] = "(dashboard settings)" };
        foreach (var a in (Json["annotations"]?["list"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (a["expr"]?.GetValue<string>() is { } expr)
            {
                yield return new Query(this, source, DatasourceUid(a["datasource"]), $"annotation {a["name"]}", expr);
            }
        }
        foreach (var v in Variables())
        {
            var text = v["query"] switch
            {
                JsonValue value => value.GetValue<string>(),
                JsonObject o => o["query"]?.GetValue<string>(),
                _ => null,
            };
            var m = text is null ? null : System.Text.RegularExpressions.Regex.Match(text, @"^\s*label_values\((.+),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$");
            if (m is { Success: true })
            {
                yield return new Query(this, source, DatasourceUid(v["datasource"]), $"variable {v["name"]}", m.Groups[1].Value);
            }
        }
    }

    public IEnumerable<JsonObject> Variables() =>
        (Json["templating"]?["list"] as JsonArray ?? []).OfType<JsonObject>();

    public static string? DatasourceUid(JsonNode? ds) => ds switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s, // legacy: a datasource name
        JsonObject o => o["uid"]?.GetValue<string>(),
        _ => null,
    };

    private static IEnumerable<JsonObject> Flatten(JsonArray? panels)
    {
        foreach (var panel in (panels ?? []).OfType<JsonObject>())
        {
            yield return panel;
            foreach (var nested in Flatten(panel["panels"] as JsonArray)) yield return nested;
        }
    }

    public static IReadOnlyList<string> Files() =>
        Directory.Exists(Root)
            ? Directory.EnumerateFiles(Root, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList()
            : [];

    public static string Root => Repo.PathOf("grafana", "dashboards");

    public static IReadOnlyList<Dashboard> LoadAll() =>
        Files().Select(file =>
        {
            var json = JsonNode.Parse(File.ReadAllText(file), documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false })
                as JsonObject ?? throw new InvalidDataException($"{Repo.Relative(file)}: not a JSON object");
            var folder = System.IO.Path.GetRelativePath(Root, System.IO.Path.GetDirectoryName(file)!).Replace('\\', '/');
            return new Dashboard(file, folder, json);
        }).ToList();
}

internal sealed record Query(Dashboard Dashboard, JsonObject Panel, string? DatasourceUid, string RefId, string Expr)
{
    public string PanelTitle => Panel["title"]?.GetValue<string>() ?? "(untitled)";

    public override string ToString() => $"{Dashboard.Name} / panel \"{PanelTitle}\" / {RefId}";
}
