using System.Globalization;
using System.Text.RegularExpressions;

namespace B25.Simulator.Tests;

/// <summary>One sample line of the Prometheus text format.</summary>
internal sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public string? this[string label] => Labels.GetValueOrDefault(label);
}

/// <summary>
/// A strict reader of the Prometheus text exposition format 0.0.4: every line must be a HELP, a
/// TYPE or a well-formed sample, or parsing fails. Enough to prove what Prometheus would accept.
/// </summary>
internal sealed partial class Exposition
{
    private Exposition(Dictionary<string, string> types, List<Sample> samples)
    {
        Types = types;
        Samples = samples;
    }

    public IReadOnlyDictionary<string, string> Types { get; }

    public IReadOnlyList<Sample> Samples { get; }

    public static Exposition Parse(string text)
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var samples = new List<Sample>();
        var lineNumber = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.True(parts.Length == 4, $"line {lineNumber}: bad TYPE line '{line}'");
                Assert.Contains(parts[3], new[] { "counter", "gauge", "histogram", "summary", "untyped" });
                Assert.True(types.TryAdd(parts[2], parts[3]), $"line {lineNumber}: second TYPE for {parts[2]}");
                continue;
            }

            if (line.StartsWith('#'))
            {
                Assert.True(line.StartsWith("# HELP ", StringComparison.Ordinal), $"line {lineNumber}: unknown comment '{line}'");
                continue;
            }

            var match = SampleLine().Match(line);
            Assert.True(match.Success, $"line {lineNumber}: not a sample: '{line}'");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match label in LabelPair().Matches(match.Groups["labels"].Value))
            {
                Assert.True(labels.TryAdd(label.Groups[1].Value, label.Groups[2].Value), $"line {lineNumber}: repeated label");
            }

            var value = match.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new Sample(match.Groups["name"].Value, labels, value));
        }

        return new Exposition(types, samples);
    }

    public IEnumerable<Sample> Named(string name) => Samples.Where(s => s.Name == name);

    public double Sum(string name, Func<Sample, bool>? where = null) =>
        Named(name).Where(where ?? (_ => true)).Sum(s => s.Value);

    public double Single(string name, params (string Label, string Value)[] labels) =>
        Named(name).Single(s => labels.All(l => s[l.Label] == l.Value)).Value;

    /// <summary>The q-quantile of a histogram, summed over all its series, the way histogram_quantile interpolates.</summary>
    public double Quantile(string histogram, double q, Exposition? since = null)
    {
        var buckets = Named(histogram + "_bucket")
            .GroupBy(s => s["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(s["le"]!, NumberStyles.Float, CultureInfo.InvariantCulture))
            .Select(g => (Le: g.Key, Count: g.Sum(s => s.Value) - (since?.Named(histogram + "_bucket")
                .Where(s => s["le"] == g.First()["le"]).Sum(s => s.Value) ?? 0)))
            .OrderBy(b => b.Le)
            .ToArray();
        var total = buckets[^1].Count;
        var rank = q * total;
        var previous = (Le: 0.0, Count: 0.0);
        foreach (var bucket in buckets)
        {
            if (bucket.Count >= rank)
            {
                if (double.IsPositiveInfinity(bucket.Le))
                {
                    return previous.Le;
                }

                var inBucket = bucket.Count - previous.Count;
                return inBucket == 0 ? bucket.Le : previous.Le + ((bucket.Le - previous.Le) * (rank - previous.Count) / inBucket);
            }

            previous = bucket;
        }

        return double.NaN;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\})? (?<value>[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|Inf|NaN))( -?\d+)?$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?""")]
    private static partial Regex LabelPair();
}
