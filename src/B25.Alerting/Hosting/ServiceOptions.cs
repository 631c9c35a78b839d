using Microsoft.Extensions.Options;

namespace B25.Alerting.Hosting;

/// <summary>The service as its users reach it.</summary>
internal sealed class ServiceOptions
{
    public const string Section = "Service";

    /// <summary>
    /// The service's address as users reach it (<c>https://alerting.b25.example</c>, with a path when a proxy
    /// serves it under one). Every link the service writes into a message is made absolute against it.
    /// Empty: links stay relative, which Slack, PagerDuty and mail clients cannot open (a warning at start).
    /// </summary>
    public string? PublicUrl { get; set; }
}

/// <summary>A wrong Service:PublicUrl fails the start: otherwise every link in every page would be broken.</summary>
internal sealed class ServiceOptionsValidator : IValidateOptions<ServiceOptions>
{
    public ValidateOptionsResult Validate(string? name, ServiceOptions options) =>
        PublicLinks.CheckPublicUrl(options.PublicUrl) is { } error ? ValidateOptionsResult.Fail(error) : ValidateOptionsResult.Success;
}
