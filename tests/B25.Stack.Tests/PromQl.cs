using System.Text;
using System.Text.RegularExpressions;

namespace B25.Stack.Tests;

/// <summary>
/// Just enough PromQL lexing to list the metric names an expression selects, and to turn a
/// Grafana query into plain PromQL. Parsing proper is promtool's job (see <see cref="Promtool"/>).
/// </summary>
internal static partial class PromQl
{
    // Words that are never metric names. Functions and aggregations need no list: an identifier
    // followed by "(" is a call (PromQL has no other use for "name(").
    private static readonly HashSet<string> Keywords = new(StringComparer.OrdinalIgnoreCase)
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
        "and", "or", "unless", "offset", "inf", "nan", "atan2",
    };

    // Keywords whose "(...)" is a list of label names, not an expression.
    private static readonly HashSet<string> LabelListKeywords = new(StringComparer.OrdinalIgnoreCase)
    {
        "by", "without", "on", "ignoring", "group_left", "group_right",
    };

    /// <summary>Grafana's built-in variables, replaced by values of the right kind.</summary>
    private static readonly (string Name, string Value)[] BuiltIns =
    [
        ("__rate_interval_ms", "60000"), ("__rate_interval", "1m"),
        ("__interval_ms", "15000"), ("__interval", "15s"),
        ("__range_ms", "3600000"), ("__range_s", "3600"), ("__range", "1h"),
        ("__from", "1700000000000"), ("__to", "1700003600000"),
    ];

    /// <summary>
    /// Replaces Grafana variables ($var, ${var}, ${var:format}, [[var]]) with values PromQL
    /// accepts: durations for the interval/range built-ins, a plain word for the rest (they are
    /// only ever used inside label matchers, which the checks require).
    /// </summary>
    public static string SubstituteGrafanaVariables(string query)
    {
        return GrafanaVariable().Replace(query, m =>
        {
            var name = m.Groups["a"].Success ? m.Groups["a"].Value
                : m.Groups["b"].Success ? m.Groups["b"].Value
                : m.Groups["c"].Value;
            foreach (var (builtIn, value) in BuiltIns)
            {
                if (name == builtIn) return value;
            }
            return "grafana_variable";
        });
    }

    /// <summary>The metric names an expression selects, in order of appearance, without duplicates.</summary>
    public static IReadOnlyList<string> MetricNames(string expr)
    {
        var names = new List<string>();
        var i = 0;
        var n = expr.Length;
        while (i < n)
        {
            var c = expr[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c == '#') { while (i < n && expr[i] != '\n') i++; continue; }
            if (c is '"' or '\'' or '`') { i = SkipString(expr, i); continue; }
            if (c == '{')
            {
                // A selector's matchers: label names and values, never metric names, except
                // {__name__="metric"}.
                var end = SkipBalanced(expr, i, '{', '}');
                foreach (Match m in NameMatcher().Matches(expr[i..end])) Add(names, m.Groups[1].Value);
                i = end;
                continue;
            }
            if (c == '[') { i = SkipBalanced(expr, i, '[', ']'); continue; } // range or subquery
            if (char.IsDigit(c) || (c == '.' && i + 1 < n && char.IsDigit(expr[i + 1])))
            {
                // Numbers, hex, exponents and durations (5m, 1h30m) all start with a digit.
                var start = i;
                while (i < n)
                {
                    if (char.IsAsciiLetterOrDigit(expr[i]) || expr[i] is '.' or '_') { i++; continue; }
                    // The sign of an exponent: "1e-3" (no duration unit is 'e').
                    if (expr[i] is '+' or '-' && expr[i - 1] is 'e' or 'E' && IsDecimal(expr[start..(i - 1)])) { i++; continue; }
                    break;
                }
                continue;
            }
            if (IsIdentStart(c))
            {
                var start = i;
                while (i < n && IsIdentPart(expr[i])) i++;
                var word = expr[start..i];
                var next = NextNonSpace(expr, i);
                if (LabelListKeywords.Contains(word))
                {
                    if (next < n && expr[next] == '(') i = SkipBalanced(expr, next, '(', ')');
                    continue;
                }
                if (Keywords.Contains(word)) continue;
                if (next < n && expr[next] == '(') continue; // function or aggregation call
                if (FollowedByGrouping(expr, next)) continue;  // "sum by (x) (...)": an aggregation
                if (i < n && expr[i] == '@') continue;       // not reachable in valid PromQL; be safe
                Add(names, word);
                continue;
            }
            if (c == '@')
            {
                // "@ start()", "@ end()", "@ 1700000000": the modifier's argument is no selector.
                i++;
                var next = NextNonSpace(expr, i);
                if (next < n && IsIdentStart(expr[next]))
                {
                    i = next;
                    while (i < n && IsIdentPart(expr[i])) i++;
                }
                continue;
            }
            i++;
        }
        return names;
    }

    private static void Add(List<string> names, string name)
    {
        if (!names.Contains(name, StringComparer.Ordinal)) names.Add(name);
    }

    private static bool IsIdentStart(char c) => char.IsAsciiLetter(c) || c is '_' or ':';

    private static bool IsIdentPart(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or ':';

    private static bool FollowedByGrouping(string s, int i)
    {
        foreach (var keyword in new[] { "by", "without" })
        {
            if (string.Compare(s, i, keyword, 0, keyword.Length, StringComparison.OrdinalIgnoreCase) == 0
                && (i + keyword.Length >= s.Length || !IsIdentPart(s[i + keyword.Length])))
            {
                var after = NextNonSpace(s, i + keyword.Length);
                return after < s.Length && s[after] == '(';
            }
        }
        return false;
    }

    private static bool IsDecimal(string s) => s.Length > 0 && s.All(ch => char.IsAsciiDigit(ch) || ch == '.');

    private static int NextNonSpace(string s, int i)
    {
        while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
        return i;
    }

    private static int SkipString(string s, int i)
    {
        var quote = s[i++];
        while (i < s.Length && s[i] != quote)
        {
            if (s[i] == '\\' && quote != '`') i++;
            i++;
        }
        return Math.Min(i + 1, s.Length);
    }

    private static int SkipBalanced(string s, int i, char open, char close)
    {
        var depth = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (c is '"' or '\'' or '`') { i = SkipString(s, i); continue; }
            if (c == open) depth++;
            else if (c == close && --depth == 0) return i + 1;
            i++;
        }
        return s.Length;
    }

    /// <summary>A one-line description of an expression for failure messages.</summary>
    public static string Short(string expr)
    {
        var one = new StringBuilder(expr.Length);
        foreach (var c in expr) one.Append(char.IsWhiteSpace(c) ? ' ' : c);
        var s = one.ToString();
        return s.Length <= 140 ? s : s[..137] + "...";
    }

    [GeneratedRegex(@"\$\{(?<b>[A-Za-z0-9_]+)(?::[^}]*)?\}|\[\[(?<c>[A-Za-z0-9_]+)(?::[^\]]*)?\]\]|\$(?<a>[A-Za-z0-9_]+)")]
    private static partial Regex GrafanaVariable();

    [GeneratedRegex(@"__name__\s*=\s*[""'`]([A-Za-z_:][A-Za-z0-9_:]*)[""'`]")]
    private static partial Regex NameMatcher();
}
