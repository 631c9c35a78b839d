using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using B25.Alerting.Delivery;
using B25.Alerting.Observability;
using B25.Alerting.Routing;
using B25.Alerting.Storage;
using B25.Alerting.Webhooks;
using System.Data.Common;

namespace B25.Alerting.Incidents;

internal enum ProcessOutcome { AlreadyProcessed, NotFound, None, Repeat, Opened, Changed, Closed, Quarantined }

/// <summary>
/// Applies one journaled notification to its alert group inside one write transaction: the state
/// machine's transition, the alerts it touches, and the deliveries it causes (an outbox), then marks
/// the notification processed. Replaying a processed notification does nothing.
/// </summary>
internal sealed partial class IncidentProcessor(
    IJournalStore journal,
    IIncidentStore incidents,
    Router router,
    IEnumerable<IChannelNotifier> channels,
    TimeProvider time,
    DeliverySignal signal,
    ILogger<IncidentProcessor> logger,
    Delivery.Presentation.AlertNaming? naming = null)
{
    // Thread replies name alerts by what tells them apart (the presentation's rule), decided when the change is planned.
    private readonly Delivery.Presentation.AlertNaming _naming = naming ?? new(new Delivery.Presentation.PresentationOptions().Hidden);

    private readonly Dictionary<string, IChannelNotifier> notifiers = channels.ToDictionary(c => c.Channel);

    /// <summary>A notification that fails this many times (storage faults not counted) is quarantined.</summary>
    public const int MaxAttempts = 3;

    // One group at a time in this process (striped, so memory stays flat): on SQLite, applying a group's
    // notifications reads its state outside the write lock, which only holds while nobody else applies
    // the same group; on a shared store the group's lock does it across replicas, and this gate keeps
    // this process's workers from queueing on it.
    private readonly SemaphoreSlim[] _groupGates = Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1)).ToArray();

    /// <summary>
    /// Applies the notification, after every earlier journaled notification of its group that is not yet
    /// applied, in journal order: whatever order the bus delivers them in (redelivery, the recovery sweep,
    /// a broker outage), a group's notifications change its incident in the order they were accepted.
    /// </summary>
    public async Task<ProcessOutcome> ProcessAsync(string notificationId, CancellationToken cancellationToken)
    {
        // The group's first unapplied notification comes with it (one round trip): usually the notification itself. Read
        // before the gate, it may be applied by the time the gate opens; applying it again finds that out under the lock.
        if (await journal.FindWithNextAsync(notificationId, cancellationToken) is not { } found) return ProcessOutcome.NotFound;
        var (head, prefetched) = found;
        if (head.ProcessedAt is not null) return ProcessOutcome.AlreadyProcessed;

        var gate = _groupGates[(int)(NotificationIdentity.PartitionKey(head.GroupId).GetHashCode() & 0x7fffffff) % _groupGates.Length];
        await gate.WaitAsync(cancellationToken);
        try
        {
            var next = prefetched;
            while (next is not null)
            {
                var outcome = await ApplyGuardedAsync(next, cancellationToken);
                if (next.Seq == head.Seq) return outcome; // the last one in order: no need to look again
                LogAppliedEarlier(next.Id, head.Id, outcome);
                next = await journal.NextUnappliedAsync(head.GroupId, head.Seq, cancellationToken);
            }
            // None left: another worker applied this one meanwhile.
            return ProcessOutcome.AlreadyProcessed;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Runs a human action on the group (<paramref name="apply"/>, which writes under the group's lock) in the
    /// group's order: after every notification of the group journaled before it, and never at the same time as
    /// another of the group's changes in this process. An action is ordered with notifications as if it were
    /// journaled when it started.
    /// </summary>
    public async Task<T> InGroupOrderAsync<T>(string groupId, Func<CancellationToken, Task<T>> apply, CancellationToken cancellationToken)
    {
        var gate = _groupGates[(int)(NotificationIdentity.PartitionKey(groupId).GetHashCode() & 0x7fffffff) % _groupGates.Length];
        await gate.WaitAsync(cancellationToken);
        try
        {
            while (await journal.NextUnappliedAsync(groupId, long.MaxValue, cancellationToken) is { } next)
            {
                var outcome = await ApplyGuardedAsync(next, cancellationToken);
                LogAppliedBeforeAction(next.Id, outcome);
            }
            return await apply(cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Applies one notification. One that cannot be applied (a body that does not bind, a bug) is retried
    /// by the bus, and quarantined after <see cref="MaxAttempts"/>: marked processed with outcome
    /// Quarantined, counted and logged, so it never blocks its group or loops forever. Storage faults are
    /// not the notification's fault and are not counted.
    /// </summary>
    private async Task<ProcessOutcome> ApplyGuardedAsync(JournalHead head, CancellationToken cancellationToken)
    {
        try
        {
            return await ApplyAsync(head.Id, head.GroupId, cancellationToken);
        }
        catch (Exception ex) when (ex is not (DbException or OperationCanceledException or ObjectDisposedException))
        {
            var attempts = await RecordFailedAttemptAsync(head.Seq, ex, cancellationToken);
            if (attempts < MaxAttempts)
            {
                LogApplyFailed(ex, head.Id, attempts, MaxAttempts);
                throw;
            }
            AlertingMetrics.NotificationsQuarantined.Inc();
            AlertingMetrics.NotificationsProcessed.WithLabels("quarantined").Inc();
            LogQuarantined(ex, head.Id, attempts);
            return ProcessOutcome.Quarantined;
        }
    }

    /// <summary>Counts a failed attempt; at the last one, quarantines the notification. Returns the attempts so far.</summary>
    private Task<long> RecordFailedAttemptAsync(long seq, Exception ex, CancellationToken cancellationToken)
    {
        var error = $"{ex.GetType().Name}: {ex.Message}";
        if (error.Length > 500) error = error[..500];
        return journal.RecordFailedAttemptAsync(seq, error, MaxAttempts, time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
    }

    private async Task<ProcessOutcome> ApplyAsync(string notificationId, string groupId, CancellationToken cancellationToken)
    {
        ProcessOutcome outcome;
        IncidentTransition? transition;
        string? incidentId;
        IReadOnlyCollection<(string Channel, string Target)> queued;
        bool unrouted;
        await using (var work = await incidents.OpenGroupAsync(groupId, cancellationToken))
        {
            // On SQLite: read and decide outside the write lock, so a large notification does not hold up
            // the journal. Notifications of one group are applied one at a time (the group gate), so what
            // was read still holds when the write starts; the checks below catch it if not.
            var row = await work.LoadNotificationAsync(notificationId, withBody: false);
            if (row is null) return ProcessOutcome.NotFound;
            if (row.ProcessedAt is not null) return ProcessOutcome.AlreadyProcessed;
            // Bound from the journal's stream: a storm's body (megabytes) is never held whole next to its alerts.
            var notification = await work.ReadBodyAsync(row.Seq,
                                   (body, ct) => JsonSerializer.DeserializeAsync(body, WebhookJsonContext.Default.AlertmanagerNotification, ct),
                                   cancellationToken)
                               ?? throw new JsonException("The journaled body is JSON null.");
            if (notification.Alerts is null) throw new JsonException("The journaled body has no 'alerts'.");
            var snapshot = await ReadAsync(work, notification);
            // Decided before the write turn too (the state machine, routing, the deliveries' payloads): the turn, SQLite's single
            // writer, only writes. What it was decided on is checked in the turn, and decided again there if it changed.
            var plan = await PlanAsync(work, row, notificationId, notification, snapshot);

            await work.BeginWriteAsync(cancellationToken);
            // Read under the group's lock (a shared store): nothing can have changed since. Otherwise check, and decide again.
            if (!work.ReadsUnderLock)
            {
                var current = await work.LoadNotificationAsync(notificationId, withBody: false);
                if (current is null) return ProcessOutcome.NotFound;
                if (current.ProcessedAt is not null) return ProcessOutcome.AlreadyProcessed;
                var openChanged = await work.OpenIncidentAsync() != snapshot.Open;
                if (openChanged) snapshot = await ReadAsync(work, notification);
                if (openChanged || (plan.ExistingTargets.Count > 0 && !await TargetsHoldAsync(work, plan)))
                    plan = await PlanAsync(work, row, notificationId, notification, snapshot);
            }

            await WriteAsync(work, plan);
            (outcome, transition, incidentId, unrouted) = (plan.Outcome, plan.Transition, plan.IncidentId, plan.Unrouted);

            await work.MarkAppliedAsync(row.Seq, outcome.ToString(), time.GetUtcNow().ToUnixTimeMilliseconds());
            await work.CommitAsync(wake: transition.ChangesIncident, cancellationToken);
            queued = work.QueuedTargets;
        }

        if (MetricsScope.Counts) // the start's warm-up applies a sample that never happened
        {
            AlertingMetrics.NotificationsProcessed.WithLabels(outcome.ToString().ToLowerInvariant()).Inc();
            switch (outcome)
            {
                case ProcessOutcome.Opened: AlertingMetrics.IncidentsOpened.Inc(); break;
                case ProcessOutcome.Closed: AlertingMetrics.IncidentsClosed.Inc(); break;
                case ProcessOutcome.Repeat: AlertingMetrics.Repeats.Inc(); break;
            }
        }
        if (unrouted) LogUnrouted(incidentId!);
        if (transition is { ChangesIncident: true })
        {
            LogTransition(incidentId!, outcome, transition.Joined.Count, transition.Resolved.Count);
            signal.Notify(queued);
        }
        return outcome;
    }

    /// <summary>
    /// The start's warm-up (Hosting/StartupWarmUp): runs what applying <paramref name="notification"/> runs (reads, state
    /// machine, routing, delivery planning, the writes) for a notification that is not in the journal, inside the group's
    /// write transaction, which is then rolled back: nothing is stored, counted, logged or delivered.
    /// </summary>
    internal async Task WarmUpAsync(string notificationId, string groupId, AlertmanagerNotification notification, CancellationToken cancellationToken)
    {
        await using var work = await incidents.OpenGroupAsync(groupId, cancellationToken);
        // The reads ApplyAsync makes: the row without its body, then the body as a stream (no such row: nothing is read).
        _ = await work.LoadNotificationAsync(notificationId, withBody: false);
        _ = await work.ReadBodyAsync(-1,
            (body, ct) => JsonSerializer.DeserializeAsync(body, WebhookJsonContext.Default.AlertmanagerNotification, ct), cancellationToken);
        var snapshot = await ReadAsync(work, notification);
        await work.BeginWriteAsync(cancellationToken);
        _ = await work.LoadNotificationAsync(notificationId, withBody: false);
        _ = await work.OpenIncidentAsync();
        var row = new JournalRow(-1, groupId, time.GetUtcNow().ToUnixTimeMilliseconds(), null, null);
        await WriteAsync(work, await PlanAsync(work, row, notificationId, notification, snapshot));
        await work.MarkAppliedAsync(row.Seq, nameof(ProcessOutcome.None), row.ReceivedAt); // no row has seq -1
        await work.FlushAsync(cancellationToken); // the writes run (queued writes go at the commit, and there is none)
        // Disposed without CommitAsync: rolled back.
    }

    /// <summary>What the group knows: its open incident and the state of every occurrence this notification or that incident names.</summary>
    private static async Task<GroupSnapshot> ReadAsync(IGroupWork work, AlertmanagerNotification notification)
    {
        var open = await work.OpenIncidentAsync();
        var known = new Dictionary<AlertKey, AlertState>();
        var openAlerts = new List<AlertKey>();
        if (open is not null)
        {
            foreach (var a in await work.AlertsOfAsync(open.Id))
            {
                var key = new AlertKey(a.Fingerprint, a.StartsAt);
                openAlerts.Add(key);
                known[key] = a.Status == "firing" ? AlertState.Firing : AlertState.Resolved;
            }
        }

        var byKey = new Dictionary<AlertKey, AlertmanagerAlert>();
        foreach (var alert in notification.Alerts!) byKey.TryAdd(AlertKey.Of(alert), alert);
        var unknown = byKey.Keys.Where(k => !known.ContainsKey(k)).Select(k => (k.Fingerprint, k.StartsAt)).ToList();
        if (unknown.Count > 0)
            foreach (var ((fingerprint, startsAt), status) in await work.AlertStatusesAsync(unknown))
                known[new AlertKey(fingerprint, startsAt)] = status == "firing" ? AlertState.Firing : AlertState.Resolved;
        return new GroupSnapshot(open, known, openAlerts, byKey);
    }

    /// <summary>What applying a notification writes, decided from what the group knows (<paramref name="snapshot"/>).</summary>
    private async Task<ApplyPlan> PlanAsync(IGroupWork work, JournalRow row, string notificationId, AlertmanagerNotification notification,
        GroupSnapshot snapshot)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var (open, known, openAlerts, byKey) = snapshot;
        var transition = IncidentStateMachine.Apply(known, openAlerts, open is not null,
            notification.Alerts!.Select(a => (AlertKey.Of(a), a.IsFiring ? AlertState.Firing : AlertState.Resolved)));

        string? incidentId = open?.Id;
        var revision = open?.Revision ?? 0;
        var commonLabels = JsonSerializer.Serialize(notification.CommonLabels ?? [], WebhookJsonContext.Default.DictionaryStringString);
        var commonAnnotations = JsonSerializer.Serialize(notification.CommonAnnotations ?? [], WebhookJsonContext.Default.DictionaryStringString);
        var externalUrl = notification.ExternalUrl ?? "";
        NewIncident? insert = null;
        IncidentUpdate? update = null;

        switch (transition.Kind)
        {
            case TransitionKind.Open:
                incidentId = IncidentIdFor(row.GroupId, notificationId);
                revision = 1;
                insert = new NewIncident(incidentId, row.GroupId, notification.Receiver!, notification.GroupKey!, now,
                    JsonSerializer.Serialize(notification.GroupLabels ?? [], WebhookJsonContext.Default.DictionaryStringString),
                    commonLabels, commonAnnotations, externalUrl, notification.TruncatedAlerts ?? 0);
                break;
            case TransitionKind.Change:
            case TransitionKind.Close:
                revision++;
                update = new IncidentUpdate(incidentId!, revision, transition.Kind == TransitionKind.Close, now,
                    commonLabels, commonAnnotations, externalUrl, notification.TruncatedAlerts ?? 0);
                break;
        }

        var alerts = transition.Joined.Select(k => Record(k, "firing", byKey[k]))
            .Concat(transition.RememberedResolved.Select(k => Record(k, "resolved", byKey[k]))).ToList();
        var resolved = transition.Resolved.Select(k => Record(k, "resolved", byKey[k])).ToList();

        // Targets that already had deliveries for this incident hear about every change (a new incident has none).
        HashSet<DeliveryTarget> existing = [];
        List<NewDelivery> deliveries = [];
        var unrouted = false;
        if (transition.ChangesIncident)
        {
            if (transition.Kind != TransitionKind.Open)
                existing = (await work.TargetsOfAsync(incidentId!)).Select(t => new DeliveryTarget(t.Channel, t.Target)).ToHashSet();
            (deliveries, unrouted) = PlanDeliveries(incidentId!, (int)revision, notification.Receiver!, row.GroupId, transition, byKey, row.ReceivedAt, now,
                notification.GroupLabels ?? [], existing);
        }

        var outcome = transition.Kind switch
        {
            TransitionKind.Open => ProcessOutcome.Opened,
            TransitionKind.Change => ProcessOutcome.Changed,
            TransitionKind.Close => ProcessOutcome.Closed,
            TransitionKind.Repeat => ProcessOutcome.Repeat,
            _ => ProcessOutcome.None,
        };
        return new ApplyPlan(outcome, transition, incidentId, now, insert, update, alerts, resolved, existing, deliveries, unrouted);
    }

    /// <summary>The incident's targets are still those the plan was made for (a delivery for a new target since would change it).</summary>
    private static async Task<bool> TargetsHoldAsync(IGroupWork work, ApplyPlan plan) =>
        (await work.TargetsOfAsync(plan.IncidentId!)).Select(t => new DeliveryTarget(t.Channel, t.Target)).ToHashSet().SetEquals(plan.ExistingTargets);

    private static async Task WriteAsync(IGroupWork work, ApplyPlan plan)
    {
        if (plan.Insert is not null) await work.InsertIncidentAsync(plan.Insert);
        if (plan.Update is not null) await work.UpdateIncidentAsync(plan.Update);
        await work.InsertAlertsAsync(plan.IncidentId, plan.Alerts, plan.Now);
        if (plan.Resolved.Count > 0) await work.ResolveAlertsAsync(plan.Resolved, plan.Now);
        foreach (var delivery in plan.Deliveries) await work.AddDeliveryAsync(delivery);
    }

    private static AlertRecord Record(AlertKey key, string status, AlertmanagerAlert alert) =>
        new(key.Fingerprint, key.StartsAt, status,
            alert.EndsAt is { } e && e.Year > 1 ? e.ToString("O") : null,
            JsonSerializer.Serialize(alert.Labels ?? [], WebhookJsonContext.Default.DictionaryStringString),
            JsonSerializer.Serialize(alert.Annotations ?? [], WebhookJsonContext.Default.DictionaryStringString),
            alert.GeneratorUrl ?? "");

    private (List<NewDelivery> Deliveries, bool Unrouted) PlanDeliveries(string incidentId, int revision, string receiver, string groupId, IncidentTransition transition,
        Dictionary<AlertKey, AlertmanagerAlert> byKey, long acceptedAt, long now, IReadOnlyDictionary<string, string> groupLabels,
        HashSet<DeliveryTarget> existing)
    {
        // Targets that already had deliveries for this incident hear about every change; a target that
        // a joining alert routes to for the first time starts there (e.g. a first Slack message).
        var joinedByTarget = new Dictionary<DeliveryTarget, List<AlertmanagerAlert>>();
        foreach (var key in transition.Joined)
        {
            var alert = byKey[key];
            foreach (var target in router.TargetsFor(receiver, alert.Labels ?? []))
            {
                if (!joinedByTarget.TryGetValue(target, out var list)) joinedByTarget[target] = list = [];
                // Two routes to the same target (continue): the alert is listed there once.
                if (list.Count == 0 || !ReferenceEquals(list[^1], alert)) list.Add(alert);
            }
        }

        var change = new IncidentChange(incidentId, revision, transition.Kind, receiver, groupId, ChangeSummary.Of(transition, byKey, _naming, groupLabels));
        var planned = 0;
        var deliveries = new List<NewDelivery>();
        var implicitTargets = notifiers.Values.Where(n => n.EveryIncident).Select(n => new DeliveryTarget(n.Channel, n.Channel));
        foreach (var target in existing.Union(joinedByTarget.Keys).Union(implicitTargets))
        {
            if (!notifiers.TryGetValue(target.Channel, out var notifier)) continue;
            var joinedHere = joinedByTarget.TryGetValue(target, out var list) ? list : [];
            foreach (var delivery in notifier.Plan(change, target, !existing.Contains(target), joinedHere))
            {
                deliveries.Add(new NewDelivery(incidentId, target.Channel, target.Target, delivery.Kind, revision, delivery.Subject,
                    delivery.Payload, acceptedAt, now));
                if (!notifier.EveryIncident) planned++;
            }
        }
        return (deliveries, Unrouted: planned == 0 && transition.Kind == TransitionKind.Open);
    }

    private static string IncidentIdFor(string groupId, string notificationId) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{groupId}\n{notificationId}")))[..24];

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Incident {IncidentId} {Outcome}: {Joined} alert(s) joined, {Resolved} resolved")]
    private partial void LogTransition(string incidentId, ProcessOutcome outcome, int joined, int resolved);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Incident {IncidentId} opened but no route has a target for it: nothing will be delivered")]
    private partial void LogUnrouted(string incidentId);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "Notification {NotificationId} applied ({Outcome}) before {LaterId}: a group's notifications are applied in journal order")]
    private partial void LogAppliedEarlier(string notificationId, string laterId, ProcessOutcome outcome);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Notification {NotificationId} could not be applied (attempt {Attempts} of {MaxAttempts}); it is retried")]
    private partial void LogApplyFailed(Exception ex, string notificationId, long attempts, int maxAttempts);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Error, Message = "Notification {NotificationId} QUARANTINED after {Attempts} failed attempts: it is kept in the journal (outcome Quarantined) and will not be retried; nothing of it was delivered")]
    private partial void LogQuarantined(Exception ex, string notificationId, long attempts);


    [LoggerMessage(EventId = 2006, Level = LogLevel.Information, Message = "Notification {NotificationId} applied ({Outcome}) before a human action on its group: the action comes after it in the group's order")]
    private partial void LogAppliedBeforeAction(string notificationId, ProcessOutcome outcome);

    private sealed record ApplyPlan(ProcessOutcome Outcome, IncidentTransition Transition, string? IncidentId, long Now, NewIncident? Insert,
        IncidentUpdate? Update, List<AlertRecord> Alerts, List<AlertRecord> Resolved, HashSet<DeliveryTarget> ExistingTargets,
        List<NewDelivery> Deliveries, bool Unrouted);

    private sealed record GroupSnapshot(OpenIncident? Open, Dictionary<AlertKey, AlertState> Known, List<AlertKey> OpenAlerts,
        Dictionary<AlertKey, AlertmanagerAlert> ByKey);
}
