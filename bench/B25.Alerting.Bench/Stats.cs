using System.Diagnostics;
using System.Globalization;

namespace B25.Alerting.Bench;

internal static class Stats
{
    public static double Ms(long fromTimestamp, long toTimestamp) => Stopwatch.GetElapsedTime(fromTimestamp, toTimestamp).TotalMilliseconds;

    /// <summary>
    /// Waits for an open loop's intended send time (a Stopwatch timestamp) by sleeping, never spinning: waiting out the last
    /// millisecond with Thread.Sleep(0) (sched_yield) took up to 0.8 of the machine's 2 cores from the service at 500
    /// requests/s. Returns within 1 ms before the intended time, or after it when the loop is late; the timestamp returned is
    /// where the request's latency counts from: when it went, if early, otherwise its intended time (no coordinated omission).
    /// </summary>
    public static long SleepUntil(long intended)
    {
        for (var wait = Ms(Stopwatch.GetTimestamp(), intended); wait >= 1; wait = Ms(Stopwatch.GetTimestamp(), intended))
            Thread.Sleep((int)wait);
        return Math.Max(intended, Stopwatch.GetTimestamp());
    }

    /// <summary>Nearest-rank percentile of a sample (p in 0..100).</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0) return double.NaN;
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    public static string F(double value, int decimals = 1) =>
        double.IsNaN(value) ? "n/a" : value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    public static string Summary(List<double> values)
    {
        values.Sort();
        return $"p50 {F(Percentile(values, 50))} / p99 {F(Percentile(values, 99))} / max {F(values.Count == 0 ? double.NaN : values[^1])} ms (n={values.Count})";
    }
}

/// <summary>A Prometheus histogram read from /metrics: cumulative bucket counts by upper bound.</summary>
internal sealed record Histogram(SortedDictionary<double, double> Buckets, double Sum, double Count)
{
    public static Histogram Parse(string metrics, string name, string? labelFilter = null)
    {
        var buckets = new SortedDictionary<double, double>();
        double sum = 0, count = 0;
        foreach (var raw in metrics.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith('#') || !line.StartsWith(name, StringComparison.Ordinal)) continue;
            if (labelFilter is not null && !line.Contains(labelFilter, StringComparison.Ordinal)) continue;
            var space = line.LastIndexOf(' ');
            if (space < 0) continue;
            var value = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
            if (line.StartsWith(name + "_bucket", StringComparison.Ordinal))
            {
                var le = line[(line.IndexOf("le=\"", StringComparison.Ordinal) + 4)..];
                le = le[..le.IndexOf('"')];
                var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);
                buckets[bound] = buckets.GetValueOrDefault(bound) + value;
            }
            else if (line.StartsWith(name + "_sum", StringComparison.Ordinal)) sum += value;
            else if (line.StartsWith(name + "_count", StringComparison.Ordinal)) count += value;
        }
        return new Histogram(buckets, sum, count);
    }

    public Histogram Minus(Histogram before) => new(
        new SortedDictionary<double, double>(Buckets.ToDictionary(b => b.Key, b => b.Value - before.Buckets.GetValueOrDefault(b.Key))),
        Sum - before.Sum, Count - before.Count);

    /// <summary>The upper bound of the bucket holding quantile q (what a bucketed histogram can say).</summary>
    public double UpperBound(double q)
    {
        if (Count <= 0) return double.NaN;
        var target = q * Count;
        foreach (var (bound, cumulative) in Buckets)
            if (cumulative >= target) return bound;
        return double.PositiveInfinity;
    }

    public string Describe(string unit = "ms", double scale = 1000)
    {
        if (Count <= 0) return "no observations";
        string B(double q)
        {
            var v = UpperBound(q);
            return double.IsPositiveInfinity(v) ? $"> {Stats.F(Buckets.Keys.Where(k => !double.IsInfinity(k)).Max() * scale, 0)}" : $"<= {Stats.F(v * scale, 1)}";
        }
        return $"n={Count:F0}, mean {Stats.F(Sum / Count * scale, 2)} {unit}, p50 {B(0.5)} {unit}, p99 {B(0.99)} {unit}";
    }
}
