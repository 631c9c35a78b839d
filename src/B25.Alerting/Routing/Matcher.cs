using System.Text;
using System.Text.RegularExpressions;

namespace B25.Alerting.Routing;

internal enum MatchType { Equal, NotEqual, Regex, NotRegex }

/// <summary>
/// One label matcher in Alertmanager's syntax: <c>name="value"</c>, <c>name!=value</c>,
/// <c>name=~"regex"</c>, <c>name!~"regex"</c>. Regexes are anchored at both ends; a missing label
/// matches as the empty string, as in Alertmanager.
/// </summary>
internal sealed class Matcher
{
    // Alertmanager's label name ([a-zA-Z_:][a-zA-Z0-9_:]*), operator, and the rest as the raw value.
    private static readonly Regex Syntax = new(
        """^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$""",
        RegexOptions.CultureInvariant | RegexOptions.Singleline);

    private readonly Regex? _regex;

    private Matcher(string name, MatchType type, string value)
    {
        Name = name;
        Type = type;
        Value = value;
        // Linear in the label's length whatever the pattern (no backtracking), so no match timeout: a timeout would throw
        // from applying a notification whenever the machine is busy enough to stall the thread past it. Alertmanager's
        // regexes are RE2, which has no backreferences or lookarounds either.
        if (type is MatchType.Regex or MatchType.NotRegex)
            _regex = new Regex($"^(?:{value})$", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
    }

    public string Name { get; }
    public MatchType Type { get; }
    public string Value { get; }

    /// <summary>Whether the label set matches; a missing label is the empty value, as in Alertmanager.</summary>
    public bool Matches(IReadOnlyDictionary<string, string> labels) => MatchesValue(labels.TryGetValue(Name, out var v) ? v : "");

    /// <summary>Whether <paramref name="actual"/>, the value of this matcher's label, matches.</summary>
    public bool MatchesValue(string actual)
    {
        return Type switch
        {
            MatchType.Equal => actual == Value,
            MatchType.NotEqual => actual != Value,
            MatchType.Regex => _regex!.IsMatch(actual),
            MatchType.NotRegex => !_regex!.IsMatch(actual),
            _ => false,
        };
    }

    /// <summary>Parses exactly one matcher; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static Matcher Parse(string text)
    {
        var all = ParseAll(text);
        return all.Count == 1 ? all[0] : throw new FormatException($"'{text}' holds {all.Count} matchers where one is expected.");
    }

    /// <summary>
    /// Parses Alertmanager's matcher list, as its <c>matchers:</c> and <c>amtool</c> take it:
    /// <c>severity="critical",team="x"</c>, optionally in braces (<c>{...}</c>), values quoted or not, commas inside
    /// quotes kept, a trailing comma allowed. Escapes: <c>\"</c>, <c>\\</c> and <c>\n</c>; any other backslash
    /// is kept as written. Throws <see cref="FormatException"/> naming the text and what is wrong.
    /// </summary>
    public static IReadOnlyList<Matcher> ParseAll(string text)
    {
        var body = text.StartsWith('{') ? text[1..] : text;
        if (body.EndsWith('}')) body = body[..^1];
        var tokens = new List<string>();
        var token = new StringBuilder();
        bool insideQuotes = false, escaped = false;
        foreach (var c in body)
        {
            switch (c)
            {
                case ',' when !insideQuotes:
                    tokens.Add(token.ToString());
                    token.Clear();
                    continue;
                case '"':
                    if (!escaped) insideQuotes = !insideQuotes;
                    else escaped = false;
                    break;
                case '\\':
                    escaped = !escaped;
                    break;
                default:
                    escaped = false;
                    break;
            }
            token.Append(c);
        }
        if (token.ToString().Trim() is { Length: > 0 } last) tokens.Add(last);
        var matchers = new List<Matcher>(tokens.Count);
        foreach (var one in tokens) matchers.Add(ParseOne(one, text));
        return matchers;
    }

    private static Matcher ParseOne(string token, string text)
    {
        var match = Syntax.Match(token);
        if (!match.Success)
            throw new FormatException($"'{text}': bad matcher format '{token.Trim()}'; expected name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\" (name: letters, digits, _ and :).");
        var op = match.Groups[2].Value;
        var type = op switch
        {
            "=" => MatchType.Equal,
            "!=" => MatchType.NotEqual,
            "=~" => MatchType.Regex,
            _ => MatchType.NotRegex,
        };
        var raw = match.Groups[3].Value;
        if (raw.Length == 0)
            throw new FormatException($"'{text}': matcher value is not present in '{token.Trim()}' (an empty value is written \"\").");
        var value = Unescape(raw, text);
        try
        {
            return new Matcher(match.Groups[1].Value, type, value);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"'{text}' has an invalid regular expression: {ex.Message}", ex);
        }
        catch (NotSupportedException ex)
        {
            throw new FormatException($"'{text}' has a regular expression Alertmanager's RE2 does not take either: {ex.Message}", ex);
        }
    }

    /// <summary>Alertmanager's unescaping: a leading quote needs a closing one at the very end; no other bare quote.</summary>
    private static string Unescape(string raw, string text)
    {
        var expectClosingQuote = raw[0] == '"';
        var inner = expectClosingQuote ? raw[1..] : raw;
        var result = new StringBuilder(inner.Length);
        var escaped = false;
        for (var i = 0; i < inner.Length; i++)
        {
            var c = inner[i];
            if (escaped)
            {
                escaped = false;
                switch (c)
                {
                    case 'n': result.Append('\n'); break;
                    case '"' or '\\': result.Append(c); break;
                    default: result.Append('\\').Append(c); break;
                }
                continue;
            }
            switch (c)
            {
                case '\\' when i < inner.Length - 1:
                    escaped = true;
                    break;
                case '"' when expectClosingQuote && i == inner.Length - 1:
                    expectClosingQuote = false;
                    break;
                case '"':
                    throw new FormatException($"'{text}': matcher value contains an unescaped double quote: {raw} (write \\\" inside a value).");
                default:
                    result.Append(c);
                    break;
            }
        }
        if (expectClosingQuote)
            throw new FormatException($"'{text}': matcher value contains an unescaped double quote: {raw} (the closing quote is missing).");
        return result.ToString();
    }

    public override string ToString() => $"{Name}{Type switch
    {
        MatchType.Equal => "=",
        MatchType.NotEqual => "!=",
        MatchType.Regex => "=~",
        _ => "!~",
    }}\"{Value}\"";
}
