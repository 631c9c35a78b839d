using System.Text;

namespace B25.Alerting.Enrichment.PromQl;

/// <summary>Turns a range query's answer into one alert's context: its series, value, min/max and sparkline.</summary>
internal static class MetricContextBuilder
{
    private const string Blocks = "▁▂▃▄▅▆▇█";

    /// <summary>
    /// The series that belongs to the alert: every label the series shares with the alert has the alert's value
    /// (the series' <c>__name__</c> never counts: alerts do not carry it). Among several, the one sharing the most
    /// labels; a tie is ambiguous and shows nothing, as does no match: an unrelated series is never shown.
    /// </summary>
    public static (PromSeries? Series, string? Reason) PickSeries(IReadOnlyList<PromSeries> series, IReadOnlyDictionary<string, string> alertLabels)
    {
        PromSeries? best = null;
        var bestShared = -1;
        var tie = false;
        foreach (var candidate in series)
        {
            var shared = 0;
            var matches = true;
            foreach (var (name, value) in candidate.Labels)
            {
                if (name == "__name__" || !alertLabels.TryGetValue(name, out var alertValue)) continue;
                if (!string.Equals(value, alertValue, StringComparison.Ordinal)) { matches = false; break; }
                shared++;
            }
            if (!matches) continue;
            if (shared > bestShared) { best = candidate; bestShared = shared; tie = false; }
            else if (shared == bestShared) tie = true;
        }
        if (best is null)
            return (null, series.Count == 1
                ? "the query returned 1 series, not this alert's (its labels differ)"
                : $"the query returned {series.Count} series, none of them this alert's (labels differ)");
        if (tie)
            return (null, "several series match the alert's labels equally well; none is shown");
        return (best, null);
    }

    /// <summary>The context of one alert from the answer to its expression's query.</summary>
    /// <param name="alert">The alert's context so far (identity, title labels).</param>
    /// <param name="alertLabels">All the alert's labels: the series is picked by them.</param>
    public static AlertMetricContext Build(AlertMetricContext alert, IReadOnlyDictionary<string, string> alertLabels, PromQlQuery query,
        PromRange range, int sparklineWidth)
    {
        var context = alert with
        {
            Expression = query.Expression,
            QueriedExpression = query.Queried,
            Threshold = query.Threshold,
            WindowStart = range.Start,
            WindowEnd = range.End,
        };
        if (range.Series.Count == 0 || range.Series.All(s => s.Points.Count == 0))
            return context with { State = ContextState.NoData, Reason = "no data for the expression in the window" };

        var (series, reason) = PickSeries(range.Series, alertLabels);
        if (series is null)
            return context with { State = ContextState.NoMatchingSeries, Reason = reason };
        if (series.Points.Count == 0)
            return context with { State = ContextState.NoData, Reason = "the alert's series has no samples in the window", SeriesLabels = series.Labels };

        var last = series.Points[^1];
        var finite = series.Points.Where(p => double.IsFinite(p.V)).Select(p => p.V).ToList();
        return context with
        {
            State = ContextState.Ok,
            Reason = null,
            SeriesLabels = series.Labels,
            Points = series.Points,
            Current = last.V,
            CurrentAt = last.Time,
            Min = finite.Count > 0 ? finite.Min() : null,
            Max = finite.Count > 0 ? finite.Max() : null,
            Sparkline = Sparkline(series.Points, range.Start, range.End, sparklineWidth, query.Threshold?.Comparison),
        };
    }

    /// <summary>
    /// The window as <paramref name="width"/> Unicode blocks, oldest left, scaled between the finite min and max.
    /// Each character stands for a slice of the window and shows the slice's extreme in the direction the rule
    /// fires (the max for <c>&gt;</c>, the min for <c>&lt;</c>, else the last value), so the point that crossed the
    /// threshold is not averaged away. A slice with no sample is a space, one with only NaN a middle dot; +Inf
    /// and -Inf are the highest and lowest blocks.
    /// </summary>
    public static string Sparkline(IReadOnlyList<MetricPoint> points, DateTimeOffset start, DateTimeOffset end, int width, string? comparison = null)
    {
        var finite = points.Where(p => double.IsFinite(p.V)).Select(p => p.V).ToList();
        var min = finite.Count > 0 ? finite.Min() : 0;
        var max = finite.Count > 0 ? finite.Max() : 0;
        var span = Math.Max(1, end.ToUnixTimeMilliseconds() - start.ToUnixTimeMilliseconds());
        var slices = new List<double>?[width];
        foreach (var point in points)
        {
            var offset = point.T - start.ToUnixTimeMilliseconds();
            if (offset < 0 || offset > span) continue;
            var index = (int)Math.Min(width - 1, offset * width / span);
            (slices[index] ??= []).Add(point.V);
        }
        var text = new StringBuilder(width);
        foreach (var slice in slices)
        {
            if (slice is null) { text.Append(' '); continue; }
            var values = slice.Where(v => !double.IsNaN(v)).ToList();
            if (values.Count == 0) { text.Append('·'); continue; }
            var value = comparison switch
            {
                ">" or ">=" => values.Max(),
                "<" or "<=" => values.Min(),
                _ => values[^1],
            };
            text.Append(Block(value, min, max));
        }
        return text.ToString();
    }

    private static char Block(double value, double min, double max)
    {
        if (double.IsPositiveInfinity(value)) return Blocks[^1];
        if (double.IsNegativeInfinity(value)) return Blocks[0];
        if (max <= min) return Blocks[3];
        var level = (int)Math.Round((value - min) / (max - min) * (Blocks.Length - 1));
        return Blocks[Math.Clamp(level, 0, Blocks.Length - 1)];
    }
}
