using System.Globalization;
using System.Text.RegularExpressions;

namespace B25.Alerting.Tests.Support;

public static class MetricsText
{
    /// <summary>The value of one series in Prometheus text format, 0 when absent.</summary>
    public static async Task<double> ReadAsync(HttpClient client, string series)
    {
        var text = await client.GetStringAsync("/metrics");
        var match = Regex.Match(text, "^" + Regex.Escape(series) + @" ([0-9.eE+-]+)$", RegexOptions.Multiline);
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }
}
