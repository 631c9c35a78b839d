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
    private static readonly Regex Syntax = new(
        """^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$""",
        RegexOptions.CultureInvariant | RegexOptions.Singleline);

    private readonly Regex? _regex;

    private Matcher(string name, MatchType type, string value)
    {
        Name = name;
        Type = type;
        Value = value;
        if (type is MatchType.Regex or MatchType.NotRegex)
            _regex = new Regex($"^(?:{value})$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
    }

    public string Name { get; }
    public MatchType Type { get; }
    public string Value { get; }

    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        var actual = labels.TryGetValue(Name, out var v) ? v : "";
        return Type switch
        {
            MatchType.Equal => actual == Value,
            MatchType.NotEqual => actual != Value,
            MatchType.Regex => _regex!.IsMatch(actual),
            MatchType.NotRegex => !_regex!.IsMatch(actual),
            _ => false,
        };
    }

    /// <summary>Parses one matcher; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static Matcher Parse(string text)
    {
        var match = Syntax.Match(text);
        if (!match.Success)
            throw new FormatException($"'{text}' is not a matcher; expected name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\".");
        var op = match.Groups[2].Value;
        var type = op switch
        {
            "=" => MatchType.Equal,
            "!=" => MatchType.NotEqual,
            "=~" => MatchType.Regex,
            _ => MatchType.NotRegex,
        };
        var value = Unquote(match.Groups[3].Value, text);
        try
        {
            return new Matcher(match.Groups[1].Value, type, value);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"'{text}' has an invalid regular expression: {ex.Message}", ex);
        }
    }

    private static string Unquote(string raw, string text)
    {
        if (raw.Length == 0 || raw[0] != '"')
        {
            if (raw.Contains('"'))
                throw new FormatException($"'{text}' has an unbalanced quote.");
            return raw;
        }
        if (raw.Length < 2 || raw[^1] != '"')
            throw new FormatException($"'{text}' has an unterminated quoted value.");
        var inner = raw[1..^1];
        var result = new StringBuilder(inner.Length);
        for (var i = 0; i < inner.Length; i++)
        {
            var c = inner[i];
            if (c == '\\' && i + 1 < inner.Length)
            {
                var next = inner[++i];
                result.Append(next switch { 'n' => '\n', 't' => '\t', _ => next });
            }
            else if (c == '"')
            {
                throw new FormatException($"'{text}' has an unescaped quote inside its value.");
            }
            else
            {
                result.Append(c);
            }
        }
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
