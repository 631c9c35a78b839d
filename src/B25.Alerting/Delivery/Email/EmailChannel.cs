using Microsoft.Extensions.Options;

namespace B25.Alerting.Delivery.Email;

internal static class EmailChannel
{
    /// <summary>Registers the email channel (SMTP through MailKit): settings from "Smtp", checked at start.</summary>
    public static IServiceCollection AddEmailChannel(this IServiceCollection services)
    {
        // An empty recipient (Smtp__To__0= from an unset variable) is no recipient, not a malformed address.
        services.AddOptions<SmtpOptions>().BindConfiguration(SmtpOptions.Section).ValidateDataAnnotations().ValidateOnStart()
            .PostConfigure(o => o.To.RemoveAll(string.IsNullOrWhiteSpace));
        services.AddSingleton<IValidateOptions<SmtpOptions>, SmtpOptionsValidator>();
        services.AddSingleton<ISmtpMailer, SmtpMailer>();
        services.AddSingleton<EmailRenderer>();
        services.AddSingleton<IChannelNotifier, EmailNotifier>();
        return services;
    }
}
