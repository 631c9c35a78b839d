using System.Buffers.Binary;
using B25.Alerting.Enrichment;
using B25.Alerting.Enrichment.Charts;
using SkiaSharp;

namespace B25.Alerting.Tests.Enrichment;

public sealed class ChartRendererTests
{
    private static readonly DateTimeOffset End = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static AlertMetricContext Context(bool withThreshold = true, IReadOnlyList<MetricPoint>? points = null) => new(
        "fp", "OrderExecutionBacklog", new Dictionary<string, string> { ["instance"] = "order-execution:9091" }, End.AddMinutes(-20), ContextState.Ok,
        Threshold: withThreshold ? new MetricThreshold(">", 100) : null,
        WindowStart: End.AddHours(-1), WindowEnd: End,
        Points: points ?? Enumerable.Range(0, 61)
            .Select(i => new MetricPoint(End.AddMinutes(i - 60).ToUnixTimeMilliseconds(), i == 30 ? double.NaN : i == 31 ? double.PositiveInfinity : 3.0 * i))
            .ToList());

    [Fact]
    public void The_chart_is_a_png_of_the_asked_size_with_the_series_and_the_threshold()
    {
        var png = ChartRenderer.RenderPng(Context());

        Assert.Equal(PngSignature, png[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
        Assert.Equal(600, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(250, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));

        using var bitmap = SKBitmap.Decode(png);
        Assert.Equal(600, bitmap.Width);
        Assert.Equal(250, bitmap.Height);
        var pixels = bitmap.Pixels;
        Assert.True(pixels.Distinct().Count() > 20, "the chart is blank");
        Assert.True(pixels.Count(IsSeriesBlue) > 200, "no series line");
        Assert.True(pixels.Count(IsThresholdRed) > 100, "no threshold line");
    }

    [Fact]
    public void Without_a_threshold_there_is_no_threshold_line()
    {
        using var bitmap = SKBitmap.Decode(ChartRenderer.RenderPng(Context(withThreshold: false)));

        Assert.True(bitmap.Pixels.Count(IsSeriesBlue) > 200);
        Assert.True(bitmap.Pixels.Count(IsThresholdRed) < 10);
    }

    [Fact]
    public void An_alert_without_points_still_gets_a_chart()
    {
        var png = ChartRenderer.RenderPng(Context(points: []) with { State = ContextState.NoData, Reason = "no data" }, 400, 200);

        using var bitmap = SKBitmap.Decode(png);
        Assert.Equal(400, bitmap.Width);
        Assert.True(bitmap.Pixels.Distinct().Count() > 2);
    }

    private static bool IsSeriesBlue(SKColor c) => c.Blue > 150 && c.Red < 90 && c.Green is > 90 and < 150;

    private static bool IsThresholdRed(SKColor c) => c.Red > 180 && c.Green < 80 && c.Blue < 80;
}
