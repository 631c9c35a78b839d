using Microsoft.Extensions.Options;

namespace B25.Alerting.Delivery.Email;

internal static class EmailChannel
{
    /// <summary>Registers the email channel (SMTP through MailKit): settings from "Smtp", checked at start.</summary>
    public static IServiceCollection AddEmailChannel(this IServiceCollection services)
    {
        services.AddOptions<SmtpOptions>().BindConfiguration(SmtpOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<SmtpOptions>, SmtpOptionsValidator>();
        services.AddSingleton<ISmtpMailer, SmtpMailer>();
        services.AddSingleton<EmailRenderer>();
        services.AddSingleton<IChannelNotifier, EmailNotifier>();
        return services;
    }
}
