using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Email;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Enrichment;
using B25.Alerting.Webhooks;

namespace B25.Alerting.Hosting;

/// <summary>
/// <c>B25.Alerting render &lt;notification.json&gt; [output folder]</c>: shows what one Alertmanager notification
/// becomes in Slack and email, with the service's settings and templates, without Slack, a mail relay or a
/// database. With <c>Prometheus:Url</c> (or Loki, Grafana) set, the page's context is queried as the service would.
/// </summary>
internal static class RenderCommand
{
    public static bool IsRender(string[] args) => args.Length > 0 && args[0] == "render";

    public static async Task<int> RunAsync(WebApplication app, string[] args)
    {
        if (args.Length < 2)
        {
            await Console.Error.WriteLineAsync("usage: B25.Alerting render <notification.json> [output folder]");
            return 2;
        }
        var file = Path.GetFullPath(args[1]);
        var output = Path.GetFullPath(args.Length > 2 ? args[2] : Path.Combine(Environment.CurrentDirectory, "rendered"));
        if (!File.Exists(file))
        {
            await Console.Error.WriteLineAsync($"render: {file} does not exist");
            return 2;
        }
        var body = await File.ReadAllBytesAsync(file);
        var (_, error) = NotificationParser.Parse(body);
        if (error is not null)
        {
            await Console.Error.WriteLineAsync($"render: {file} is not a notification the webhook would accept: {error}");
            return 2;
        }
        var notification = JsonSerializer.Deserialize(body, WebhookJsonContext.Default.AlertmanagerNotification)!;
        var services = app.Services;
        var incident = ViewOf(notification, services.GetRequiredService<TimeProvider>().GetUtcNow());
        var enricher = services.GetRequiredService<IIncidentEnricher>();
        incident = incident with { Enrichment = await enricher.EnrichAsync(EnrichmentRequest.From(incident), CancellationToken.None) };

        Directory.CreateDirectory(output);
        var slack = services.GetRequiredService<SlackRenderer>().RenderIncident(incident);
        await File.WriteAllTextAsync(Path.Combine(output, "slack.json"),
            new JsonObject { ["text"] = slack.Text, ["blocks"] = slack.Blocks.DeepClone() }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        var mail = services.GetRequiredService<EmailRenderer>().Render(incident, incident.State == "closed" ? EmailKinds.Closed : EmailKinds.Opened);
        var html = mail.Html;
        if (mail.Chart is { } chart)
        {
            // A browser opening the file finds the inline picture next to it.
            await File.WriteAllBytesAsync(Path.Combine(output, "chart.png"), chart);
            html = html.Replace($"cid:{EmailRenderer.ChartContentId}", "chart.png", StringComparison.Ordinal);
        }
        await File.WriteAllTextAsync(Path.Combine(output, "email.html"), html);
        await File.WriteAllTextAsync(Path.Combine(output, "email.txt"), $"Subject: {mail.Subject}\n\n{mail.Text}");

        var summary = new StringBuilder()
            .AppendLine($"Slack: {slack.Text}")
            .AppendLine($"Email: {mail.Subject}")
            .AppendLine($"Written to {output}: slack.json (paste its blocks into Block Kit Builder), email.html, email.txt{(mail.Chart is null ? "" : ", chart.png")}");
        await Console.Out.WriteAsync(summary.ToString());
        return 0;
    }

    /// <summary>The incident the notification would open, as the channels see it.</summary>
    internal static IncidentView ViewOf(AlertmanagerNotification n, DateTimeOffset now)
    {
        var alerts = (n.Alerts ?? []).Select(a => new AlertView(
            a.Fingerprint ?? "",
            a.StartsAt?.ToString("O") ?? now.ToString("O"),
            a.Status ?? "firing",
            a.EndsAt is { Year: > 1 } end ? end.ToString("O") : null,
            a.Labels ?? [],
            a.Annotations ?? [],
            a.GeneratorUrl ?? "")).ToList();
        var firing = alerts.Count(a => a.Status == "firing");
        var closed = firing == 0 && alerts.Count > 0;
        return new IncidentView("rendered", n.Receiver ?? "", n.GroupKey ?? "", closed ? "closed" : "open", 1, now, closed ? now : null,
            n.GroupLabels ?? [], n.CommonLabels ?? [], n.CommonAnnotations ?? [], n.ExternalUrl ?? "", firing, alerts.Count - firing, alerts,
            n.TruncatedAlerts ?? 0);
    }
}
