using System.Diagnostics;
using System.Text;
using System.Text.Json;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Email;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Enrichment;
using B25.Alerting.Enrichment.Grafana;
using B25.Alerting.Enrichment.Logs;
using B25.Alerting.Enrichment.PromQl;
using B25.Alerting.Incidents;
using B25.Alerting.Observability;
using B25.Alerting.Pipeline;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using Dapper;
using MassTransit;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Hosting;

/// <summary>One thing the first page would otherwise pay for (JIT, a connection, a template), done once at start.</summary>
internal sealed record WarmUpStep(string Name, Func<IServiceProvider, CancellationToken, Task> RunAsync);

/// <summary>
/// Runs, once the service listens and before <c>/health/ready</c> says ready, what the first notification after a
/// start would otherwise pay for: the JIT of intake, journal, state machine, routing, delivery planning and rendering,
/// the delivery dispatcher's claim, send mark and record around a Slack post, edit and reply, the queries' first use
/// (Dapper builds a reader per query and type), the storage connection, a bus round trip, the HTTP server's routing and
/// the Slack connection (the readiness check's auth.test goes through the delivery's client).
/// Nothing reaches a channel, nothing is stored and nothing counts in the service's metrics: the sample notification is
/// applied, and the sample delivery dispatched, inside transactions that are rolled back, the Slack calls are answered in
/// this process, and its bus message names a notification the journal does not hold. A step that fails or
/// takes too long is logged and skipped: a page without warm-up beats a replica that never reports ready.
/// </summary>
internal sealed partial class StartupWarmUp(
    IServiceProvider services, IEnumerable<WarmUpStep> steps, IHostApplicationLifetime lifetime, ILogger<StartupWarmUp> logger) : BackgroundService
{
    /// <summary>Each step gets at most this long.</summary>
    public TimeSpan StepTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>The whole warm-up gets at most this long: the steps left after it are skipped (a machine that slow gains little from them).</summary>
    public TimeSpan Budget { get; set; } = TimeSpan.FromSeconds(8);

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(3);

    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _report = [];
    private long _started;

    /// <summary>Completes when every step ran (or failed, or timed out).</summary>
    public Task Done => _done.Task;

    /// <summary>How long a readiness probe that arrives during the warm-up waits for it before answering "not ready".</summary>
    public TimeSpan ProbeWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Each step and what it took, e.g. "intake 12 ms".</summary>
    public string Report { get { lock (_report) return string.Join(", ", _report); } }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            // After the server listens (the HTTP step calls it) and the bus has started (hosted services before it).
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
            await using (stoppingToken.Register(() => started.TrySetCanceled(stoppingToken)))
                await started.Task;
            _started = Stopwatch.GetTimestamp();
            foreach (var step in steps)
            {
                if (Stopwatch.GetElapsedTime(_started) >= Budget)
                {
                    lock (_report) _report.Add($"{step.Name} skipped (over the {Budget.TotalSeconds:F0} s budget)");
                    LogStepFailed(step.Name, $"skipped: the warm-up took over {Budget.TotalSeconds:F0} s", null);
                    continue;
                }
                var t0 = Stopwatch.GetTimestamp();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(StepTimeout);
                string outcome;
                try
                {
                    await step.RunAsync(services, timeout.Token).WaitAsync(timeout.Token);
                    outcome = $"{Stopwatch.GetElapsedTime(t0).TotalMilliseconds:F0} ms";
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                    outcome = $"gave up after {StepTimeout.TotalSeconds:F0} s";
                    LogStepFailed(step.Name, outcome, null);
                }
                catch (WarmUpSkipped skipped)
                {
                    outcome = $"skipped ({skipped.Message})";
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    outcome = $"failed ({ex.GetType().Name})";
                    LogStepFailed(step.Name, outcome, ex);
                }
                lock (_report) _report.Add($"{step.Name} {outcome}");
            }
            LogWarmedUp(Stopwatch.GetElapsedTime(_started).TotalMilliseconds, Report);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _done.TrySetResult();
        }
    }

    /// <summary>The built-in steps, in the order a notification meets them.</summary>
    public static IEnumerable<WarmUpStep> Steps() =>
    [
        new("http", HttpAsync),
        new("intake", IntakeAsync),
        new("journal", JournalAsync),
        new("state machine", StateMachineAsync),
        new("webhook", WebhookAsync),
        new("bus", BusAsync),
        new("render", RenderAsync),
        new("delivery reads", DeliveryReadsAsync),
        new("delivery", DeliveryAsync),
        new("slack connection", SlackAsync),
        new("gc", CollectAsync),
    ];

    /// <summary>
    /// A full, compacting collection of what the start and the steps above left: the first page then starts with an empty
    /// gen 0 and does not pay for a collection of the start's garbage (with the project's 8 MB gen-0 budget one often fell in
    /// it: 5 of 15 first pages over 100 ms, against 1 of 25 with a large budget; docs/benchmarks.md, 2026-12-03).
    /// </summary>
    private static Task CollectAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return Task.CompletedTask;
    }

    /// <summary>A notification no alert rule sends: its own receiver-less group key, so it never meets a real group.</summary>
    internal static byte[] SampleBody(DateTimeOffset now)
    {
        var startsAt = now.AddMinutes(-1).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");
        return Encoding.UTF8.GetBytes($$"""
            {"receiver":"b25-critical","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"B25AlertingWarmUp","instance":"b25-alerting:8080","job":"b25-alerting","service":"b25-alerting","severity":"critical"},"annotations":{"summary":"Start-up warm-up of B25.Alerting (never stored, never sent)","description":"Rendered in memory at start so that the first real page does not pay for the JIT."},"startsAt":"{{startsAt}}","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph?g0.expr=up%7Bjob%3D%22b25-alerting%22%7D+%3D%3D+0&g0.tab=1","fingerprint":"b25a1e47a11e7a5e"}],"groupLabels":{"alertname":"B25AlertingWarmUp"},"commonLabels":{"alertname":"B25AlertingWarmUp","instance":"b25-alerting:8080","job":"b25-alerting","service":"b25-alerting","severity":"critical"},"commonAnnotations":{"summary":"Start-up warm-up of B25.Alerting (never stored, never sent)"},"externalURL":"http://alertmanager:9093","version":"4","groupKey":"{}/{b25_alerting_warm_up=\"true\"}:{alertname=\"B25AlertingWarmUp\"}","truncatedAlerts":0}
            """);
    }

    private sealed record Sample(byte[] Body, AlertmanagerNotification Notification, string Id, string GroupId);

    private static Sample Parse(IServiceProvider services)
    {
        var body = SampleBody(services.GetRequiredService<TimeProvider>().GetUtcNow());
        var (envelope, error) = NotificationParser.Parse(body);
        if (error is not null) throw new InvalidOperationException($"warm-up sample refused by intake: {error}");
        var notification = JsonSerializer.Deserialize(body, WebhookJsonContext.Default.AlertmanagerNotification)!;
        return new Sample(body, notification, NotificationIdentity.NotificationId(envelope!), NotificationIdentity.GroupId(envelope!.Receiver, envelope.GroupKey));
    }

    private static Task IntakeAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var sample = Parse(services);
        _ = NotificationIdentity.PartitionKey(sample.GroupId);
        return Task.CompletedTask;
    }

    /// <summary>The journal's write transaction (connection, durable commit, group locks) with no row taken, and its reads.</summary>
    private static async Task JournalAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var sample = Parse(services);
        var journal = services.GetRequiredService<IJournalStore>();
        var entry = new JournalEntry(sample.Id, sample.GroupId, sample.Notification.Receiver!, sample.Notification.GroupKey!, 0, sample.Body);
        await journal.AppendAsync([entry], _ => false, CallTimeout, cancellationToken);
        _ = await journal.FindWithNextAsync(sample.Id, cancellationToken);
        _ = await journal.NextUnappliedAsync(sample.GroupId, long.MaxValue, cancellationToken);
    }

    private static Task StateMachineAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var sample = Parse(services);
        return services.GetRequiredService<IncidentProcessor>().WarmUpAsync(sample.Id, sample.GroupId, sample.Notification, cancellationToken);
    }

    /// <summary>A round trip through the bus to the consumer, for a notification the journal does not hold (it finds nothing).</summary>
    private static async Task BusAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var sample = Parse(services);
        var id = "warm-up-" + Guid.NewGuid().ToString("N");
        var publisher = services.GetRequiredService<NotificationPublisher>();
        var consumed = publisher.WatchForWarmUp(id);
        await services.GetRequiredService<IBus>().Publish(new NotificationAccepted(id, sample.GroupId, NotificationIdentity.PartitionKey(sample.GroupId)),
            cancellationToken);
        // On RabbitMQ another replica may take it: then this one's consumer stays cold, and the step gives up.
        await consumed.WaitAsync(cancellationToken);
    }

    private static Task RenderAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var sample = Parse(services);
        var view = RenderCommand.ViewOf(sample.Notification, services.GetRequiredService<TimeProvider>().GetUtcNow());
        var slack = services.GetRequiredService<SlackRenderer>();
        var message = slack.RenderIncident(view);
        _ = message.Blocks.ToJsonString();
        _ = slack.RenderChange(view, []);
        _ = slack.RenderIncident(view with { State = "closed", ClosedAt = view.OpenedAt });
        var email = services.GetRequiredService<EmailRenderer>();
        _ = email.Render(view, EmailKinds.Opened);
        _ = email.Render(view with { State = "closed", ClosedAt = view.OpenedAt }, EmailKinds.Closed);
        return Task.CompletedTask;
    }

    /// <summary>What a channel worker reads before it sends: the incident as the channels see it, and its message so far.</summary>
    private static async Task DeliveryReadsAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var none = "warm-up-" + Guid.NewGuid().ToString("N");
        var readModel = services.GetRequiredService<IIncidentReadModel>();
        _ = await readModel.LoadAsync(none, 50, cancellationToken);
        // After a restart there are incidents: reading one (only reading) builds what the worker's read of a real one needs.
        foreach (var state in new[] { "open", "closed" })
            if ((await readModel.ListAsync(state, 1, cancellationToken)).FirstOrDefault() is { } id)
            {
                _ = await readModel.LoadAsync(id, 50, cancellationToken);
                break;
            }
        _ = await readModel.DeliveriesAsync(none, cancellationToken);
    }

    /// <summary>
    /// What a real delivery runs, through the dispatcher itself: a first Slack post, then an edit and a thread reply, each
    /// taking the target's claim, reading the due deliveries, the incident and its message, marking the send and recording
    /// its outcome. The sample incident and its deliveries go to a target no route names, inside one write transaction that
    /// is rolled back (<see cref="RolledBackStorage"/>): nothing is stored, and other replicas never see its rows or its
    /// claim. The Slack calls go to a throwaway notifier whose client answers in this process, and nothing is counted.
    /// </summary>
    private static async Task DeliveryAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var sample = Parse(services);
        var time = services.GetRequiredService<TimeProvider>();
        var slackOptions = services.GetRequiredService<IOptions<SlackOptions>>();
        var renderer = services.GetRequiredService<SlackRenderer>();
        var storageOptions = services.GetRequiredService<IOptions<StorageOptions>>();
        // No enrichment: it would query the real sources and store what they said.
        var noEnrichment = new EnrichmentStage(services.GetRequiredService<IIncidentEnricher>(), services.GetRequiredService<IEnrichmentStore>(),
            Options.Create(new PrometheusOptions()), Options.Create(new LokiOptions()), Options.Create(new GrafanaOptions()), time,
            NullLogger<EnrichmentStage>.Instance);
        var provider = services.GetRequiredService<IStorageProvider>();
        MetricsScope.StopCountingHere();

        using var http = new HttpClient(new InProcessSlack()) { BaseAddress = new Uri("http://slack.warm-up.invalid/api/") };
        var notifier = new SlackNotifier(new SlackWebApi(http, slackOptions), renderer, slackOptions, time, NullLogger<SlackNotifier>.Instance);
        await using var storage = await RolledBackStorage.BeginAsync(provider, cancellationToken);
        var dispatcher = new DeliveryDispatcher(new DeliveryOutbox(storage, storageOptions, time), new IncidentReadModel(storage), storage,
            new DeliverySignal(time), [notifier], time, new StorageStatus(storage, time), noEnrichment, NullLogger<DeliveryDispatcher>.Instance);

        var unique = Guid.NewGuid().ToString("N");
        var target = $"#b25-warm-up-{unique}";
        var queue = new SampleQueue(storage, $"warm-up-{unique}", target, time.GetUtcNow().ToUnixTimeMilliseconds());
        await queue.IncidentAsync(sample, cancellationToken);
        await queue.DeliveriesAsync(1, ["post"], cancellationToken);
        await dispatcher.DeliverDueAsync("slack", target, cancellationToken);
        await queue.DeliveriesAsync(2, ["update", "reply"], cancellationToken);
        await dispatcher.DeliverDueAsync("slack", target, cancellationToken);
        // A path that failed warmed less than it should: say so in the warm-up's report.
        if (await queue.NotSentAsync(cancellationToken) is { Length: > 0 } notSent)
            throw new InvalidOperationException($"the sample deliveries were not all sent ({notSent})");
    }

    /// <summary>The sample incident and its Slack deliveries, written in the rolled-back transaction.</summary>
    private sealed class SampleQueue(RolledBackStorage storage, string incidentId, string target, long now)
    {
        // Ids of their own (negative: never a real one), so no sequence moves: a sequence is not rolled back.
        private readonly long _firstId = -Random.Shared.NextInt64(1L << 40, 1L << 60);
        private int _queued;

        public async Task IncidentAsync(Sample sample, CancellationToken cancellationToken)
        {
            var n = sample.Notification;
            var alert = n.Alerts![0];
            var labels = JsonSerializer.Serialize(alert.Labels ?? [], WebhookJsonContext.Default.DictionaryStringString);
            await using var connection = await storage.OpenAsync(cancellationToken);
            await connection.ExecuteAsync(
                """
                INSERT INTO incidents (id, group_id, receiver, group_key, state, revision, opened_at, updated_at, group_labels, common_labels,
                                       common_annotations, external_url)
                VALUES (@incidentId, @incidentId, @Receiver, @GroupKey, 'open', 1, @now, @now, @labels, @labels, @annotations, @ExternalUrl);
                INSERT INTO alerts (group_id, fingerprint, starts_at, status, incident_id, labels, annotations, generator_url, updated_at)
                VALUES (@incidentId, @Fingerprint, @startsAt, 'firing', @incidentId, @labels, @annotations, @GeneratorUrl, @now);
                """,
                new
                {
                    incidentId, n.Receiver, n.GroupKey, now, labels, n.ExternalUrl, alert.Fingerprint, alert.GeneratorUrl,
                    startsAt = alert.StartsAt?.ToString("O"),
                    annotations = JsonSerializer.Serialize(alert.Annotations ?? [], WebhookJsonContext.Default.DictionaryStringString),
                });
        }

        public async Task DeliveriesAsync(long revision, string[] kinds, CancellationToken cancellationToken)
        {
            var change = JsonSerializer.Serialize(new ChangeSummary("open", 1, 0, ["B25AlertingWarmUp"], []), DeliveryJsonContext.Default.ChangeSummary);
            var overriding = storage.Kind == StorageProviderKind.Postgres ? "OVERRIDING SYSTEM VALUE" : "";
            await using var connection = await storage.OpenAsync(cancellationToken);
            foreach (var kind in kinds)
                await connection.ExecuteAsync(
                    $"""
                    INSERT INTO deliveries (id, incident_id, channel, target, kind, revision, payload, status, next_attempt_at, accepted_at, created_at)
                    {overriding} VALUES (@id, @incidentId, 'slack', @target, @kind, @revision, @change, 'pending', @now, @now, @now)
                    """, new { id = _firstId + _queued++, incidentId, target, kind, revision, change, now });
        }

        /// <summary>The kinds of the sample deliveries still pending, or empty.</summary>
        public async Task<string> NotSentAsync(CancellationToken cancellationToken)
        {
            await using var connection = await storage.OpenAsync(cancellationToken);
            return string.Join(", ", await connection.QueryAsync<string>(
                "SELECT kind || ': ' || status FROM deliveries WHERE incident_id = @incidentId AND status <> 'sent'", new { incidentId }));
        }
    }

    /// <summary>Answers every Slack call as Slack answers a successful one; nothing leaves the process.</summary>
    private sealed class InProcessSlack : HttpMessageHandler
    {
        private const string Ok = """{"ok":true,"channel":"C0WARMUP","ts":"1764000000.000100"}""";

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            // Answer later, as a network would: every async method on the way suspends, so what that costs (their state
            // machine boxes, compiled on first suspension) is paid here, not by the first page.
            await Task.Yield();
            return new HttpResponseMessage(System.Net.HttpStatusCode.OK)
            {
                RequestMessage = request,
                Content = new StringContent(Ok, Encoding.UTF8, "application/json"),
            };
        }
    }

    /// <summary>The readiness check's auth.test, which opens the connection the first post reuses (same handler).</summary>
    private static async Task SlackAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var check = services.GetRequiredService<SlackTokenCheck>();
        await check.RefreshAsync(cancellationToken);
        await check.FirstAnswered.WaitAsync(cancellationToken);
    }

    /// <summary>One request to this service's own liveness endpoint: Kestrel's and routing's first request (the route table is built then).</summary>
    private static async Task HttpAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        // The webhook's answer is serialized with the app's JSON options (reflection-based metadata, built on first use).
        var json = services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        _ = JsonSerializer.Serialize(new AlertmanagerWebhookEndpoints.Accepted("accepted", "warm-up"), json);
        using var request = new HttpRequestMessage(HttpMethod.Get, OwnAddress(services, "/health/live"));
        request.Headers.Add(WarmUpRequests.Header, services.GetRequiredService<WarmUpRequests>().Secret);
        using var response = await SendToSelfAsync(request, cancellationToken);
    }

    /// <summary>
    /// The sample notification through this service's own webhook and then the state machine, as a real one goes: Kestrel's
    /// request body, the endpoint, the journal's batching front, its insert (the body by blob I/O on SQLite), the processor's
    /// group loop, its reads of the journaled row and body, and every write of opening the incident. Journaled and applied
    /// inside one write transaction that is rolled back (<see cref="RolledBackStorage"/>), by a journal and a processor of
    /// the warm-up's own over it: the request carries <see cref="WarmUpRequests"/>' secret, so the endpoint journals it there,
    /// publishes nothing and counts nothing. On PostgreSQL the rolled-back insert draws one number from the journal's
    /// sequence (a gap in <c>seq</c>, as any rolled-back insert leaves; order is all the journal needs of it).
    /// </summary>
    private static async Task WebhookAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var sample = Parse(services);
        var time = services.GetRequiredService<TimeProvider>();
        var warmUps = services.GetRequiredService<WarmUpRequests>();
        var webhook = services.GetRequiredService<IOptions<WebhookOptions>>();
        MetricsScope.StopCountingHere();

        await using var storage = await RolledBackStorage.BeginAsync(services.GetRequiredService<IStorageProvider>(), cancellationToken);
        var journalStore = new JournalStore(storage);
        using var journal = new NotificationJournal(journalStore, webhook, new StorageStatus(storage, time), NullLogger<NotificationJournal>.Instance);
        await journal.StartAsync(cancellationToken);
        warmUps.Journal = journal;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, OwnAddress(services, "/webhooks/alertmanager")) { Content = new ByteArrayContent(sample.Body) };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            request.Headers.Add(WarmUpRequests.Header, warmUps.Secret);
            if (webhook.Value.BearerToken is { Length: > 0 } token)
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            using var response = await SendToSelfAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
                throw new InvalidOperationException($"the webhook answered the sample {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }
        catch (WarmUpSkipped)
        {
            // No socket to call (an in-process host): journaled without the HTTP request, so the rest still runs.
            var n = sample.Notification;
            await journal.AppendAsync(new JournalEntry(sample.Id, sample.GroupId, n.Receiver!, n.GroupKey!, time.GetUtcNow().ToUnixTimeMilliseconds(), sample.Body),
                webhook.Value.JournalTimeout, cancellationToken);
        }
        finally
        {
            warmUps.Journal = null;
            await journal.StopAsync(CancellationToken.None);
        }

        var processor = new IncidentProcessor(journalStore, new IncidentStore(storage), services.GetRequiredService<Routing.Router>(),
            services.GetServices<IChannelNotifier>(), time, new DeliverySignal(time), NullLogger<IncidentProcessor>.Instance,
            services.GetService<Delivery.Presentation.AlertNaming>());
        var outcome = await processor.ProcessAsync(sample.Id, cancellationToken);
        if (outcome != ProcessOutcome.Opened) throw new InvalidOperationException($"the sample was applied as {outcome}, not Opened");
    }

    /// <summary>This service's own HTTP address (the first one it listens on), with <paramref name="path"/>.</summary>
    private static Uri OwnAddress(IServiceProvider services, string path)
    {
        var addresses = services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var address = addresses.Select(a => Uri.TryCreate(a.Replace("://+", "://localhost").Replace("://*", "://localhost"), UriKind.Absolute, out var u) ? u : null)
            .FirstOrDefault(u => u is not null && u.Scheme == Uri.UriSchemeHttp);
        if (address is null) throw new WarmUpSkipped("no HTTP address");
        var host = address.Host is "0.0.0.0" or "[::]" or "::" or "localhost" ? "127.0.0.1" : address.Host;
        return new UriBuilder(address) { Host = host, Path = path }.Uri;
    }

    private static async Task<HttpResponseMessage> SendToSelfAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = CallTimeout };
        try
        {
            return await http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            // An in-process host (tests) has addresses but no socket.
            throw new WarmUpSkipped($"{request.RequestUri} not reachable from here: {ex.Message}");
        }
    }

    /// <summary>A step that does not apply here (e.g. no socket to call): reported, not a failure.</summary>
    internal sealed class WarmUpSkipped(string reason) : Exception(reason);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Warmed up in {Milliseconds:F0} ms what the first page needs ({Steps}); /health/ready can report ready")]
    private partial void LogWarmedUp(double milliseconds, string steps);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Warm-up step {Step} {Outcome}: the first page may be slower; readiness does not wait for it")]
    private partial void LogStepFailed(string step, string outcome, Exception? ex);
}

/// <summary>
/// Not ready until the warm-up is done: a probe that arrives meanwhile waits for it (at most
/// <see cref="StartupWarmUp.ProbeWait"/>) and answers Unhealthy if it is still running.
/// </summary>
internal sealed class WarmUpHealthCheck(StartupWarmUp warmUp) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!warmUp.Done.IsCompleted)
        {
            try
            {
                await warmUp.Done.WaitAsync(warmUp.ProbeWait, cancellationToken);
            }
            catch (TimeoutException)
            {
                return HealthCheckResult.Unhealthy($"warming up what the first page needs (done so far: {(warmUp.Report is { Length: > 0 } r ? r : "nothing")})");
            }
        }
        return HealthCheckResult.Healthy($"warmed up: {warmUp.Report}");
    }
}
