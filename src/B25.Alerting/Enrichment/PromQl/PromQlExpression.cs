using System.Globalization;
using System.Text.RegularExpressions;

namespace B25.Alerting.Enrichment.PromQl;

/// <summary>An alert rule's expression, and what to query to show it.</summary>
/// <param name="Expression">The rule's expression as in the generatorURL.</param>
/// <param name="Queried">The left side of a top-level comparison with a constant, else <paramref name="Expression"/>.</param>
/// <param name="Threshold">The constant and the comparison, read as "fires when value Comparison constant".</param>
internal sealed record PromQlQuery(string Expression, string Queried, MetricThreshold? Threshold);

/// <summary>
/// Reads a rule's expression out of Prometheus' generatorURL and finds a top-level comparison with a constant.
/// Not a PromQL parser: a scan of the top level (outside brackets, strings and comments) that knows PromQL's
/// precedence just well enough: <c>and</c>/<c>or</c>/<c>unless</c> bind looser than comparisons (so
/// <c>a &gt; 5 and b</c> has no threshold), comparisons are left-associative (the last one is the root), and a
/// comparison with <c>bool</c> returns 0/1 instead of filtering (no threshold).
/// </summary>
internal static partial class PromQlExpression
{
    /// <summary>The <c>g0.expr</c> of a generatorURL; null when it is missing, empty or not a URL with a query.</summary>
    public static string? FromGeneratorUrl(string? generatorUrl)
    {
        if (string.IsNullOrWhiteSpace(generatorUrl)) return null;
        var question = generatorUrl.IndexOf('?');
        if (question < 0) return null;
        var query = generatorUrl[(question + 1)..];
        var hash = query.IndexOf('#');
        if (hash >= 0) query = query[..hash];
        foreach (var pair in query.Split('&'))
        {
            var equals = pair.IndexOf('=');
            if (equals <= 0 || Decode(pair[..equals]) != "g0.expr") continue;
            var value = Decode(pair[(equals + 1)..]).Trim();
            return value.Length == 0 ? null : value;
        }
        return null;
    }

    /// <summary>The generatorURL's expression and what to query; null when there is none or it cannot be read.</summary>
    public static PromQlQuery? FromAlert(string? generatorUrl) =>
        FromGeneratorUrl(generatorUrl) is { } expression ? Analyse(expression) : null;

    /// <summary>
    /// Finds the root comparison of <paramref name="expression"/>. Null when the text cannot be a PromQL
    /// expression (unbalanced brackets, an unterminated string, a stray <c>=</c>): such an expression is not sent.
    /// </summary>
    public static PromQlQuery? Analyse(string expression)
    {
        if (!TryScan(expression, out var clean, out var comparisons, out var setOperator)) return null;
        var trimmed = clean.Trim();
        if (trimmed.Length == 0) return null;
        if (setOperator || comparisons.Count == 0) return new PromQlQuery(expression, trimmed, null);

        var (at, op) = comparisons[^1];
        var left = clean[..at].Trim();
        var right = clean[(at + op.Length)..].Trim();
        if (left.Length == 0 || right.Length == 0) return null;
        if (BoolModifier().IsMatch(right)) return new PromQlQuery(expression, trimmed, null);
        if (TryParseNumber(right, out var rightValue))
            return new PromQlQuery(expression, left, new MetricThreshold(op, rightValue));
        if (comparisons.Count == 1 && TryParseNumber(left, out var leftValue))
            return new PromQlQuery(expression, right, new MetricThreshold(Flip(op), leftValue));
        return new PromQlQuery(expression, trimmed, null);
    }

    /// <summary>
    /// Scans the top level: records each comparison operator (position, text) and whether a set operator
    /// occurs; returns the text with comments blanked. False when brackets or strings do not balance.
    /// </summary>
    private static bool TryScan(string expression, out string clean, out List<(int At, string Op)> comparisons, out bool setOperator)
    {
        var text = expression.ToCharArray();
        comparisons = [];
        setOperator = false;
        clean = expression;
        var depth = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case '"' or '\'':
                    i = EndOfQuoted(text, i, c);
                    if (i < 0) return false;
                    continue;
                case '`':
                    i = Array.IndexOf(text, '`', i + 1);
                    if (i < 0) return false;
                    continue;
                case '#':
                    while (i < text.Length && text[i] != '\n') text[i++] = ' ';
                    continue;
                case '(' or '[' or '{':
                    depth++;
                    continue;
                case ')' or ']' or '}':
                    if (--depth < 0) return false;
                    continue;
            }
            if (depth > 0) continue;
            if (c is '=' or '!' or '<' or '>')
            {
                var twoChars = i + 1 < text.Length && text[i + 1] == '=';
                if (!twoChars && c is '=' or '!') return false; // '=', '=~', '!~' belong inside braces
                var op = twoChars ? $"{c}=" : c.ToString();
                comparisons.Add((i, op));
                i += op.Length - 1;
            }
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                var end = i;
                while (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] is '_' or ':')) end++;
                var word = new string(text, i, end - i);
                if (word.Equals("and", StringComparison.OrdinalIgnoreCase) || word.Equals("or", StringComparison.OrdinalIgnoreCase)
                    || word.Equals("unless", StringComparison.OrdinalIgnoreCase))
                    setOperator = true;
                i = end - 1;
            }
            else if (char.IsAsciiDigit(c) || c == '.')
            {
                // A number (1e-9, 0x1F, 1.5): skip it whole, so its exponent is not read as a word.
                var end = i;
                while (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] == '.'
                                             || (text[end] is '+' or '-' && text[end - 1] is 'e' or 'E' && !IsHex(text, i))))
                    end++;
                i = end - 1;
            }
        }
        clean = new string(text);
        return depth == 0;
    }

    private static bool IsHex(char[] text, int start) =>
        start + 1 < text.Length && text[start] == '0' && text[start + 1] is 'x' or 'X';

    private static int EndOfQuoted(char[] text, int start, char quote)
    {
        for (var i = start + 1; i < text.Length; i++)
        {
            if (text[i] == '\\') { i++; continue; }
            if (text[i] == quote) return i;
        }
        return -1;
    }

    /// <summary>A numeric literal, optionally signed and in parentheses: <c>5</c>, <c>-0.5</c>, <c>(1e3)</c>, <c>0x10</c>, <c>Inf</c>.</summary>
    public static bool TryParseNumber(string text, out double value)
    {
        value = double.NaN;
        var s = text.Trim();
        while (s.Length >= 2 && s[0] == '(' && s[^1] == ')' && Encloses(s)) s = s[1..^1].Trim();
        var sign = 1.0;
        if (s.Length > 0 && s[0] is '+' or '-')
        {
            if (s[0] == '-') sign = -1;
            s = s[1..].TrimStart();
        }
        if (s.Equals("inf", StringComparison.OrdinalIgnoreCase)) { value = sign * double.PositiveInfinity; return true; }
        if (s.Equals("nan", StringComparison.OrdinalIgnoreCase)) { value = double.NaN; return true; }
        if (HexNumber().IsMatch(s) && ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex))
        {
            value = sign * hex;
            return true;
        }
        if (DecimalNumber().IsMatch(s) && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            value = sign * number;
            return true;
        }
        return false;
    }

    /// <summary>True when the first '(' closes at the last character: "(5)" yes, "(a) + (b)" no.</summary>
    private static bool Encloses(string s)
    {
        var depth = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '(') depth++;
            else if (s[i] == ')' && --depth == 0) return i == s.Length - 1;
        }
        return false;
    }

    private static string Flip(string op) => op switch
    {
        ">" => "<",
        "<" => ">",
        ">=" => "<=",
        "<=" => ">=",
        _ => op,
    };

    private static string Decode(string component) => Uri.UnescapeDataString(component.Replace('+', ' '));

    [GeneratedRegex(@"^bool\b", RegexOptions.IgnoreCase)]
    private static partial Regex BoolModifier();

    [GeneratedRegex(@"^0[xX][0-9a-fA-F]+$")]
    private static partial Regex HexNumber();

    [GeneratedRegex(@"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")]
    private static partial Regex DecimalNumber();
}
