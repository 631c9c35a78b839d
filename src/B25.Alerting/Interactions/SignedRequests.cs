using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using B25.Alerting.Delivery.Slack;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Interactions;

/// <summary>The raw body of a request whose signature was checked: what the endpoint parses, byte for byte what was signed.</summary>
internal sealed record SignedBody(byte[] Bytes);

/// <summary>
/// Signatures already taken within the window a timestamp is accepted in: the same signed request a second time
/// (a replay) is refused. Per process; the actions it leads to are idempotent across replicas anyway.
/// </summary>
internal sealed class ReplayGuard(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, long> _seen = new(StringComparer.Ordinal);
    private long _nextPrune;

    /// <summary>True the first time a signature is seen; false for a replay.</summary>
    public bool FirstTime(string signature, TimeSpan keepFor)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (now >= Interlocked.Read(ref _nextPrune))
        {
            Interlocked.Exchange(ref _nextPrune, now + 30_000);
            foreach (var (key, until) in _seen)
                if (until < now) _seen.TryRemove(key, out _);
        }
        return _seen.TryAdd(signature, now + (long)keepFor.TotalMilliseconds);
    }
}

internal static class SignedRequests
{
    public const string SlackScheme = "SlackSignature";
    public const string PagerDutyScheme = "PagerDutySignature";
    public const string SlackPolicy = "SlackSigned";
    public const string PagerDutyPolicy = "PagerDutySigned";

    /// <summary>Slack sends a whole message back with every click: generous, but bounded.</summary>
    public const int MaxBodyBytes = 1024 * 1024;

    public static readonly global::Prometheus.Counter Rejected = global::Prometheus.Metrics.CreateCounter(
        "b25_alerting_signed_requests_rejected_total",
        "Requests to /slack/interactions and /webhooks/pagerduty refused (401) for their signature, by source (slack, pagerduty) and reason (missing, stale, bad_signature, replayed, too_large).",
        new global::Prometheus.CounterConfiguration { LabelNames = ["source", "reason"] });

    /// <summary>Reads the body (at most <see cref="MaxBodyBytes"/>; null when larger), leaving the stream where it was for nobody: the endpoint uses <see cref="SignedBody"/>.</summary>
    public static async Task<byte[]?> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength > MaxBodyBytes) return null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes) return null;
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    public static byte[] Hmac(string secret, byte[] message) => HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), message);

    /// <summary>Constant-time comparison of a given hex signature with the expected bytes (case of the hex ignored).</summary>
    public static bool HexEquals(string given, byte[] expected)
    {
        var expectedHex = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(expected));
        var givenBytes = Encoding.ASCII.GetBytes(given.Trim().ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(givenBytes, expectedHex);
    }

    /// <summary>401 as problem+json, naming what was wrong (never the secret or the expected signature).</summary>
    public static Task ChallengeAsync(HttpContext context, string source, string? reason)
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        return Results.Problem(title: "Unauthorized", statusCode: 401,
            detail: $"The request's {source} signature was not accepted: {reason ?? "missing"}.").ExecuteAsync(context);
    }
}

/// <summary>
/// What the two signature schemes share: a refusal is counted by source and reason and answered 401 problem+json naming
/// what was wrong; an accepted request keeps its raw body (<see cref="SignedBody"/>) for the endpoint.
/// </summary>
internal abstract class SignatureHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggers,
    UrlEncoder encoder,
    string source,
    string vendor) : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, loggers, encoder)
{
    protected AuthenticateResult Fail(string reason, string detail)
    {
        SignedRequests.Rejected.WithLabels(source, reason).Inc();
        Context.Items["signature-failure"] = detail;
        return AuthenticateResult.Fail(detail);
    }

    protected AuthenticateResult Accept(byte[] body)
    {
        Context.Features.Set(new SignedBody(body));
        var identity = new ClaimsIdentity([new Claim("source", source)], Scheme.Name);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        SignedRequests.ChallengeAsync(Context, vendor, Context.Items["signature-failure"] as string);
}

/// <summary>
/// Slack's request signing, version v0, as an authentication scheme: <c>X-Slack-Signature</c> must be
/// <c>v0=</c> + hex HMAC-SHA256 of <c>v0:{X-Slack-Request-Timestamp}:{raw body}</c> under <c>Slack:SigningSecret</c>
/// (compared in constant time), the timestamp within <c>Slack:MaxRequestAge</c> of this clock, and the signature not seen before.
/// </summary>
internal sealed class SlackSignatureHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggers,
    UrlEncoder encoder,
    IOptions<SlackOptions> slack,
    TimeProvider time,
    ReplayGuard replays) : SignatureHandler(schemeOptions, loggers, encoder, "slack", "Slack")
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var secret = slack.Value.SigningSecret;
        if (string.IsNullOrEmpty(secret)) return AuthenticateResult.NoResult();
        var timestamp = Request.Headers["X-Slack-Request-Timestamp"].ToString();
        var signature = Request.Headers["X-Slack-Signature"].ToString();
        if (timestamp.Length == 0 || signature.Length == 0) return Fail("missing", "no X-Slack-Request-Timestamp or X-Slack-Signature header");
        if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
            return Fail("stale", "X-Slack-Request-Timestamp is not unix seconds");
        var age = time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(seconds, 0, 253402300799));
        if (age.Duration() > slack.Value.MaxRequestAge)
            return Fail("stale", $"X-Slack-Request-Timestamp is {age.Duration().TotalSeconds:F0} s from this clock (at most {slack.Value.MaxRequestAge.TotalSeconds:F0} s)");
        var body = await SignedRequests.ReadBodyAsync(Request, Context.RequestAborted);
        if (body is null) return Fail("too_large", $"the body is larger than {SignedRequests.MaxBodyBytes} bytes");
        if (!signature.StartsWith("v0=", StringComparison.Ordinal)) return Fail("bad_signature", "X-Slack-Signature is not a v0 signature");
        var basis = Encoding.UTF8.GetBytes($"v0:{timestamp}:").Concat(body).ToArray();
        if (!SignedRequests.HexEquals(signature[3..], SignedRequests.Hmac(secret, basis)))
            return Fail("bad_signature", "X-Slack-Signature does not match the body under Slack:SigningSecret");
        if (!replays.FirstTime("slack:" + signature, slack.Value.MaxRequestAge * 2 + TimeSpan.FromMinutes(1)))
            return Fail("replayed", "this signed request was already taken");
        return Accept(body);
    }
}

/// <summary>
/// PagerDuty's webhook signatures (v3) as an authentication scheme: <c>X-PagerDuty-Signature</c> holds one or more
/// comma-separated <c>v1=</c> + hex HMAC-SHA256 of the raw body (several while a secret is being rotated); one
/// matching <c>PagerDuty:WebhookSecret</c> is enough.
/// </summary>
internal sealed class PagerDutySignatureHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggers,
    UrlEncoder encoder,
    IOptions<Delivery.PagerDuty.PagerDutyOptions> pagerDuty) : SignatureHandler(schemeOptions, loggers, encoder, "pagerduty", "PagerDuty")
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var secret = pagerDuty.Value.WebhookSecret;
        if (string.IsNullOrEmpty(secret)) return AuthenticateResult.NoResult();
        var header = Request.Headers["X-PagerDuty-Signature"].ToString();
        if (header.Length == 0) return Fail("missing", "no X-PagerDuty-Signature header");
        var body = await SignedRequests.ReadBodyAsync(Request, Context.RequestAborted);
        if (body is null) return Fail("too_large", $"the body is larger than {SignedRequests.MaxBodyBytes} bytes");
        var expected = SignedRequests.Hmac(secret, body);
        var matched = header.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(s => s.StartsWith("v1=", StringComparison.Ordinal))
            .Aggregate(false, (found, s) => SignedRequests.HexEquals(s[3..], expected) | found); // every one compared: no early exit
        if (!matched) return Fail("bad_signature", "no v1 signature in X-PagerDuty-Signature matches the body under PagerDuty:WebhookSecret");
        // PagerDuty signs the body only, with no time in it, and retries a delivery it did not see answered: a request
        // seen before is not refused here, its event id makes it the same action (recorded once).
        return Accept(body);
    }
}
