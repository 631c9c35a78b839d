using Microsoft.Extensions.Options;

namespace B25.Alerting.Hosting;

/// <summary>
/// Turns the links the service writes (runbooks, and the <c>runbook_url</c> the Prometheus rules carry as
/// <c>/runbooks/&lt;alert&gt;</c>) into links a reader can open from Slack, PagerDuty or a mail: relative
/// links are resolved against <see cref="ServiceOptions.PublicUrl"/>; http(s) links pass unchanged; any other
/// scheme (<c>javascript:</c>, <c>data:</c>, ...) is dropped, since alert annotations are not ours to trust.
/// </summary>
internal sealed partial class PublicLinks
{
    /// <summary>The public address without its trailing slash; null when Service:PublicUrl is not set.</summary>
    private readonly string? _base;

    public PublicLinks(IOptions<ServiceOptions> options, ILogger<PublicLinks> logger)
    {
        var url = options.Value.PublicUrl;
        if (string.IsNullOrWhiteSpace(url))
        {
            LogNoPublicUrl(logger);
            return;
        }
        _base = url.Trim().TrimEnd('/');
    }

    /// <summary>The service's public address without a trailing slash, or null when it is not configured.</summary>
    public string? PublicUrl => _base;

    /// <summary>
    /// An absolute link for <paramref name="link"/>: a relative link (<c>/runbooks/X</c>, or <c>runbooks/X</c>:
    /// both relative to the service's root) is prefixed with the public address, or returned as it is when
    /// none is configured; an absolute http or https link is returned unchanged; a link with any other scheme,
    /// a protocol-relative link (<c>//host/...</c>, another host), control characters, or nothing at all: null.
    /// </summary>
    public string? Absolute(string? link)
    {
        if (string.IsNullOrWhiteSpace(link)) return null;
        var value = link.Trim();
        // Browsers strip tabs and newlines inside a URL ("java\tscript:"), so such a link is not what it seems.
        if (value.Any(char.IsControl)) return null;
        if (value.StartsWith("//", StringComparison.Ordinal) || value.StartsWith('\\') || value.StartsWith("/\\", StringComparison.Ordinal))
            return null;
        if (SchemeOf(value) is { } scheme)
        {
            var web = scheme.Equals("http", StringComparison.OrdinalIgnoreCase) || scheme.Equals("https", StringComparison.OrdinalIgnoreCase);
            return web && value.AsSpan(scheme.Length).StartsWith("://", StringComparison.Ordinal)
                       && Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Host.Length > 0
                ? value
                : null;
        }
        if (_base is null) return value;
        return value[0] == '/' ? _base + value : _base + "/" + value;
    }

    /// <summary>Why <paramref name="publicUrl"/> cannot be the service's public address, or null when it can (or is empty).</summary>
    internal static string? CheckPublicUrl(string? publicUrl)
    {
        if (string.IsNullOrWhiteSpace(publicUrl)) return null;
        var value = publicUrl.Trim();
        const string example = " (e.g. https://alerting.b25.example)";
        if (value.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
            return $"Service:PublicUrl '{publicUrl}' contains spaces or control characters.";
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || !value.Contains("://", StringComparison.Ordinal) || uri.Host.Length == 0)
            return $"Service:PublicUrl '{publicUrl}' must be an absolute http or https URL{example}.";
        if (value.Contains('?', StringComparison.Ordinal) || value.Contains('#', StringComparison.Ordinal))
            return $"Service:PublicUrl '{publicUrl}' must not have a query or a fragment: links are appended to it.";
        if (uri.UserInfo.Length > 0)
            return $"Service:PublicUrl '{publicUrl}' must not carry a user name or password: it is written into every message.";
        return null;
    }

    /// <summary>The scheme of <paramref name="link"/> (RFC 3986: a ':' before any '/', '?' or '#'), or null for a relative link.</summary>
    private static string? SchemeOf(string link)
    {
        var end = link.AsSpan().IndexOfAny(":/?#");
        return end > 0 && link[end] == ':' ? link[..end] : null;
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "Service:PublicUrl is empty: links in messages (runbooks, /runbooks/<alert> runbook_url annotations) stay relative and will not be clickable in Slack, PagerDuty or email. Set it to the address users reach this service at, e.g. https://alerting.b25.example")]
    private static partial void LogNoPublicUrl(ILogger logger);
}

internal static class PublicLinksRegistration
{
    /// <summary>Registers <see cref="PublicLinks"/> with Service:PublicUrl checked at start; safe to call more than once.</summary>
    public static IServiceCollection AddPublicLinks(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(PublicLinks))) return services;
        services.AddOptions<ServiceOptions>().BindConfiguration(ServiceOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ServiceOptions>, ServiceOptionsValidator>();
        services.AddSingleton<PublicLinks>();
        return services;
    }
}
