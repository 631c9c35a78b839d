using ScottPlot;

namespace B25.Alerting.Enrichment.Charts;

/// <summary>
/// A PNG of one alert's PromQL context: the series over the window, the threshold as a dashed red line, a
/// vertical marker where the alert started, and the alert's name and distinguishing labels as the title.
/// Readable at the default 600x250 (an email's inline image).
/// </summary>
internal static class ChartRenderer
{
    public const int DefaultWidth = 600;
    public const int DefaultHeight = 250;

    private static readonly Color SeriesColor = Color.FromHex("#1f77b4");
    private static readonly Color ThresholdColor = Color.FromHex("#d62728");
    private static readonly Color StartColor = Color.FromHex("#7f7f7f");

    /// <summary>Renders the chart; an alert with no points gets a chart that says so (never an exception).</summary>
    public static byte[] RenderPng(AlertMetricContext metric, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(metric);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 100);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 80);

        using var plot = new Plot();
        plot.Title(Shorten(metric.Title(), 90), size: 13);
        var timeAxis = plot.Axes.DateTimeTicksBottom();
        if (timeAxis.TickGenerator is ScottPlot.TickGenerators.DateTimeAutomatic ticks)
            ticks.LabelFormatter = time => time.ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture);
        plot.XLabel("UTC", size: 11);

        var points = metric.Points ?? [];
        var finite = points.Where(p => double.IsFinite(p.V)).ToList();
        // A line per run of finite values: NaN and ±Inf are gaps, not zeros or spikes to infinity.
        var first = true;
        foreach (var run in Runs(points))
        {
            var line = plot.Add.ScatterLine(
                run.Select(p => p.Time.UtcDateTime.ToOADate()).ToArray(),
                run.Select(p => p.V).ToArray());
            line.Color = SeriesColor;
            line.LineWidth = 2;
            line.MarkerSize = run.Count == 1 ? 4 : 0;
            if (first) line.LegendText = "value";
            first = false;
        }

        var low = finite.Count > 0 ? finite.Min(p => p.V) : 0;
        var high = finite.Count > 0 ? finite.Max(p => p.V) : 1;
        if (metric.Threshold is { } threshold && double.IsFinite(threshold.Value))
        {
            var line = plot.Add.HorizontalLine(threshold.Value);
            line.Color = ThresholdColor;
            line.LineWidth = 1.5f;
            line.LinePattern = LinePattern.Dashed;
            line.LegendText = $"fires when {threshold}";
            low = Math.Min(low, threshold.Value);
            high = Math.Max(high, threshold.Value);
        }

        var start = metric.WindowStart ?? finite.FirstOrDefault()?.Time;
        var end = metric.WindowEnd ?? finite.LastOrDefault()?.Time;
        if (start is { } from && end is { } to && to > from)
        {
            plot.Axes.SetLimitsX(from.UtcDateTime.ToOADate(), to.UtcDateTime.ToOADate());
            if (metric.StartsAt >= from && metric.StartsAt <= to)
            {
                var marker = plot.Add.VerticalLine(metric.StartsAt.UtcDateTime.ToOADate());
                marker.Color = StartColor;
                marker.LineWidth = 1;
                marker.LinePattern = LinePattern.Dotted;
                marker.LegendText = $"fired {metric.StartsAt.UtcDateTime.ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture)}";
            }
        }
        var pad = high > low ? (high - low) * 0.1 : Math.Max(1, Math.Abs(high) * 0.1);
        plot.Axes.SetLimitsY(low - pad, high + pad);

        if (points.Count == 0)
        {
            var note = plot.Add.Annotation(metric.Reason ?? "no data", Alignment.MiddleCenter);
            note.LabelFontSize = 14;
        }
        plot.ShowLegend(Alignment.UpperLeft);
        plot.Legend.FontSize = 11;
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    private static IEnumerable<List<MetricPoint>> Runs(IReadOnlyList<MetricPoint> points)
    {
        var run = new List<MetricPoint>();
        foreach (var point in points)
        {
            if (double.IsFinite(point.V)) { run.Add(point); continue; }
            if (run.Count > 0) yield return run;
            run = [];
        }
        if (run.Count > 0) yield return run;
    }

    private static string Shorten(string text, int max)
    {
        if (text.Length <= max) return text;
        var cut = max - 1;
        if (char.IsHighSurrogate(text[cut - 1])) cut--;
        return text[..cut] + "…";
    }
}
