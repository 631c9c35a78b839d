using System.Text.RegularExpressions;

namespace B25.Stack.Tests;

/// <summary>
/// Finds secrets written into a deployment file: a password, token or key given as a literal instead
/// of an interpolated variable (compose) or a Secret reference (Kubernetes).
/// </summary>
internal static partial class SecretValues
{
    /// <summary>`${VAR}`, `${VAR:-default}`, `${VAR:?message}`: the value comes from the environment (compose/.env).</summary>
    public static bool IsInterpolation(string value) => Interpolation().IsMatch(value);

    /// <summary>
    /// What is wrong with <paramref name="value"/> under <paramref name="key"/>, or nothing. By name: a
    /// key that names a secret (…PASSWORD, …Token, a secret setting of the service) must not hold a literal.
    /// </summary>
    public static IEnumerable<string> Problems(string key, string value, bool byName = true)
    {
        if (byName && (SecretName().IsMatch(key) || ServiceSettings.IsSecret(key)) && value.Length > 0
            && !IsInterpolation(value) && !PasswordInConnectionString().IsMatch(value) && !UserInfo().IsMatch(value))
        {
            yield return $"{key}: literal secret value";
        }
        foreach (Match m in PasswordInConnectionString().Matches(value))
        {
            if (!IsInterpolation(m.Groups["secret"].Value.Trim())) yield return $"{key}: connection string with a literal password";
        }
        foreach (Match m in UserInfo().Matches(value))
        {
            if (!IsInterpolation(m.Groups["secret"].Value)) yield return $"{key}: URI with a literal password";
        }
        if (SlackToken().IsMatch(value)) yield return $"{key}: a Slack token";
    }

    [GeneratedRegex(@"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?+][^}]*)?\}$")]
    private static partial Regex Interpolation();

    // POSTGRES_PASSWORD, RABBITMQ_DEFAULT_PASS, Slack__BotToken, ...; not POSTGRES_PASSWORD_FILE (a path).
    [GeneratedRegex(@"(password|pass|passwd|token|secret|api_?key|routing_?key)$", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();

    [GeneratedRegex(@"(?:^|;)\s*(?:password|pwd)\s*=\s*(?<secret>[^;]*)", RegexOptions.IgnoreCase)]
    private static partial Regex PasswordInConnectionString();

    [GeneratedRegex(@"://[^/@\s:]*:(?<secret>[^@\s]*)@")]
    private static partial Regex UserInfo();

    [GeneratedRegex(@"xox[abpr]-[0-9]")]
    private static partial Regex SlackToken();
}
