using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace B25.FaultSuite;

/// <summary>One alert group of a storm and the notifications Alertmanager sends for it, in order.</summary>
internal sealed record Group(int Id, string Token, string GroupKey, string Severity, string Team, IReadOnlyList<string> Bodies)
{
    public bool Critical => Severity == "critical";
    public string Channel => Critical ? $"crit-{Team}" : $"alerts-{Team}";
}

/// <summary>What the storm saw on the webhook: answers per notification.</summary>
internal sealed class StormStats
{
    private long _posts, _ok, _retried, _rejected, _accepted;
    /// <summary>Notifications with at least one copy answered 2xx.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Per group (its token), when a copy of its first notification was first answered 2xx (unix ms).</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, long> FirstAcceptedMs { get; } = new(StringComparer.Ordinal);
    public void Accept() => Interlocked.Increment(ref _accepted);
    private long _dropped;
    /// <summary>Notifications every copy of which got a 4xx: Alertmanager drops them.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);
    public void Drop() => Interlocked.Increment(ref _dropped);
    public long Posts => Interlocked.Read(ref _posts);
    public long Answered2xx => Interlocked.Read(ref _ok);
    /// <summary>5xx, timeouts and refused connections: retried, as Alertmanager does.</summary>
    public long Retried => Interlocked.Read(ref _retried);
    /// <summary>4xx answers: Alertmanager drops these, so each one is a test failure.</summary>
    public long Rejected4xx => Interlocked.Read(ref _rejected);
    public int Notifications { get; set; }
    /// <summary>Copies (of notifications the cluster accepted through another copy) still unanswered when the storm's time ran out.</summary>
    public int CopiesUnanswered { get; set; }
    public void Post() => Interlocked.Increment(ref _posts);
    public void Ok() => Interlocked.Increment(ref _ok);
    public void Retry() => Interlocked.Increment(ref _retried);
    public void Reject() => Interlocked.Increment(ref _rejected);
}

/// <summary>
/// A storm of alert groups as Alertmanager HA sends it: every notification POSTed as 3 concurrent copies (one per
/// replica), each copy retried until it gets a 2xx (Alertmanager retries 5xx and failed connections forever); a group's
/// next notification only after the previous one was answered. Groups start spread over the storm's length.
/// </summary>
internal static class Storm
{
    public const string Token = "b25-fault-suite-token";
    public const int Copies = 3;
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    public static List<Group> Build(string run, int count)
    {
        var groups = new List<Group>(count);
        for (var i = 0; i < count; i++)
        {
            var token = $"fz{run}g{i:D4}x";
            var severity = (i % 3) switch { 0 => "critical", 1 => "warning", _ => "info" };
            var team = $"t{i / 3 % Scenarios.Teams}";
            var groupKey = $"{{}}/{{severity=~\"^(?:critical|warning|info)$\"}}:{{alertname=\"{token}\"}}";
            var startsAt = T0.AddSeconds(i);
            var a1 = Alert(token, "a1", severity, team, startsAt);
            var a2 = Alert(token, "a2", severity, team, startsAt.AddSeconds(30));
            // Some groups: firing with 1 alert, then 2 alerts, then resolved; the rest firing, then resolved.
            List<JsonObject[]> steps = i % 5 < 2
                ? [[a1("firing")], [a1("firing"), a2("firing")], [a1("resolved"), a2("resolved")]]
                : [[a1("firing")], [a1("resolved")]];
            groups.Add(new Group(i, token, groupKey, severity, team,
                steps.Select(alerts => Body(token, groupKey, severity, team, alerts)).ToList()));
        }
        return groups;
    }

    private static Func<string, JsonObject> Alert(string token, string name, string severity, string team, DateTimeOffset startsAt) =>
        status => new JsonObject
        {
            ["status"] = status,
            ["labels"] = new JsonObject
            {
                ["alertname"] = token, ["severity"] = severity, ["team"] = team, ["instance"] = $"{token}-{name}:9100",
            },
            ["annotations"] = new JsonObject { ["summary"] = $"{token} {name} is failing" },
            ["startsAt"] = startsAt.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"),
            ["endsAt"] = status == "resolved" ? startsAt.AddMinutes(5).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'") : "0001-01-01T00:00:00Z",
            ["generatorURL"] = "http://prometheus.test/graph?g0.expr=up%3D%3D0",
            ["fingerprint"] = $"{token}{name}",
        };

    private static string Body(string token, string groupKey, string severity, string team, JsonObject[] alerts) =>
        new JsonObject
        {
            ["receiver"] = "b25-faults",
            ["status"] = alerts.Any(a => (string?)a["status"] == "firing") ? "firing" : "resolved",
            ["alerts"] = new JsonArray(alerts.Select(a => (JsonNode)a).ToArray()),
            ["groupLabels"] = new JsonObject { ["alertname"] = token },
            ["commonLabels"] = new JsonObject { ["alertname"] = token, ["severity"] = severity, ["team"] = team },
            ["commonAnnotations"] = new JsonObject(),
            ["externalURL"] = "http://alertmanager.test:9093",
            ["version"] = "4",
            ["groupKey"] = groupKey,
            ["truncatedAlerts"] = 0,
        }.ToJsonString();

    /// <summary>Runs every group to its end; groups start spread over <paramref name="spread"/>, steps a short random pause apart.</summary>
    public static async Task RunAsync(IReadOnlyList<Group> groups, string baseUrl, TimeSpan spread, TimeSpan maxStepPause, StormStats stats,
        CancellationToken cancellationToken)
    {
        stats.Notifications = groups.Sum(g => g.Bodies.Count);
        using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(5), ConnectTimeout = TimeSpan.FromSeconds(3) };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(15) };
        var tasks = groups.Select(async g =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(spread.TotalMilliseconds * g.Id / Math.Max(1, groups.Count)), cancellationToken);
            for (var step = 0; step < g.Bodies.Count; step++)
            {
                if (step > 0) await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * maxStepPause.TotalMilliseconds), cancellationToken);
                var body = g.Bodies[step];
                var onOk = OnFirstAccepted(stats, g, step);
                var answers = await Task.WhenAll(Enumerable.Range(0, Copies).Select(_ => PostUntilAnsweredAsync(http, baseUrl, body, stats, cancellationToken, onOk)));
                if (answers.Any(ok => ok)) stats.Accept();
                else stats.Drop();
            }
        }).ToList();
        await Task.WhenAll(tasks);
    }

    /// <summary>
    /// The storm against a cluster, as Alertmanager HA in front of it sends it: copy k of every notification goes from
    /// Alertmanager replica k to service replica k (each copy to a different replica; each Alertmanager names itself in
    /// externalURL), and is retried there until that replica answers 2xx. A group's next notification goes once the
    /// cluster accepted this one (some copy answered 2xx); the other copies keep being retried meanwhile, as slower
    /// Alertmanager peers do, so they may reach their replica after the group's later notifications.
    /// <paramref name="accepted"/> completes when every group's last notification was accepted (or given up); the storm
    /// ends when every copy was answered. Copies still unanswered when <paramref name="cancellationToken"/> fires are
    /// counted in <see cref="StormStats.CopiesUnanswered"/>, notifications no copy of which was answered in <see cref="StormStats.Accepted"/>.
    /// </summary>
    public static async Task RunAsync(IReadOnlyList<Group> groups, IReadOnlyList<string> baseUrls, TimeSpan spread, TimeSpan maxStepPause,
        StormStats stats, TaskCompletionSource accepted, CancellationToken cancellationToken)
    {
        stats.Notifications = groups.Sum(g => g.Bodies.Count);
        using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(5), ConnectTimeout = TimeSpan.FromSeconds(3) };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(15) };
        var stragglers = new List<Task<bool>>();
        var tasks = groups.Select(async g =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(spread.TotalMilliseconds * g.Id / Math.Max(1, groups.Count)), cancellationToken);
            for (var step = 0; step < g.Bodies.Count; step++)
            {
                if (step > 0) await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * maxStepPause.TotalMilliseconds), cancellationToken);
                var onOk = OnFirstAccepted(stats, g, step);
                var copies = Enumerable.Range(0, Copies).Select(k => PostUntilAnsweredAsync(http, baseUrls[k % baseUrls.Count],
                    g.Bodies[step].Replace("\"externalURL\":\"http://alertmanager.test:9093\"", $"\"externalURL\":\"http://alertmanager-{k}.test:9093\"", StringComparison.Ordinal),
                    stats, cancellationToken, onOk)).ToList();
                lock (stragglers) stragglers.AddRange(copies);
                var accepted = false;
                while (copies.Count > 0 && !accepted)
                {
                    var done = await Task.WhenAny(copies);
                    copies.Remove(done);
                    accepted = await done;
                }
                if (accepted) stats.Accept();
                else stats.Drop();
            }
        }).ToList();
        try
        {
            await Task.WhenAll(tasks);
        }
        finally
        {
            accepted.TrySetResult();
            Task<bool>[] all;
            lock (stragglers) all = [.. stragglers];
            try { await Task.WhenAll(all); }
            catch (OperationCanceledException) { }
            stats.CopiesUnanswered = all.Count(t => t.IsCanceled);
        }
    }

    /// <summary>For a group's first notification: notes when a copy of it is first answered 2xx (<see cref="StormStats.FirstAcceptedMs"/>).</summary>
    private static Action? OnFirstAccepted(StormStats stats, Group g, int step) =>
        step == 0 ? () => stats.FirstAcceptedMs.TryAdd(g.Token, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) : null;

    /// <summary>True on a 2xx, false on a 4xx (Alertmanager gives up).</summary>
    private static async Task<bool> PostUntilAnsweredAsync(HttpClient http, string baseUrl, string body, StormStats stats, CancellationToken cancellationToken,
        Action? onOk = null)
    {
        var pause = 100;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            stats.Post();
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, baseUrl + "/webhooks/alertmanager")
                {
                    Content = new StringContent(body, Encoding.UTF8, "application/json"),
                };
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
                request.Headers.UserAgent.ParseAdd("Alertmanager/0.25.0");
                using var response = await http.SendAsync(request, cancellationToken);
                var code = (int)response.StatusCode;
                if (code is >= 200 and < 300)
                {
                    onOk?.Invoke();
                    stats.Ok();
                    return true;
                }
                if (code is >= 400 and < 500)
                {
                    // Alertmanager gives up on a 4xx: the notification is lost, and the suite says so.
                    stats.Reject();
                    var text = await response.Content.ReadAsStringAsync(cancellationToken);
                    Console.Error.WriteLine($"  4xx from the webhook: {code} {text[..Math.Min(200, text.Length)]}");
                    return false;
                }
                stats.Retry();
            }
            catch (HttpRequestException) { stats.Retry(); }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested) { stats.Retry(); }
            await Task.Delay(pause + Random.Shared.Next(pause), cancellationToken);
            pause = Math.Min(1000, pause * 2);
        }
    }
}

/// <summary>The service's own view, read over its HTTP API.</summary>
internal static class ServiceApi
{
    public static async Task<JsonArray?> IncidentsAsync(HttpClient http, string baseUrl, string state)
    {
        try
        {
            using var r = await http.GetAsync($"{baseUrl}/api/incidents?state={state}&limit=1000");
            if (r.StatusCode != HttpStatusCode.OK) return null;
            return JsonNode.Parse(await r.Content.ReadAsStringAsync()) as JsonArray;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException) { return null; }
    }

    public static async Task<double?> MetricAsync(HttpClient http, string baseUrl, string name)
    {
        try
        {
            var text = await http.GetStringAsync($"{baseUrl}/metrics");
            foreach (var line in text.Split('\n'))
                if (line.StartsWith(name + " ", StringComparison.Ordinal) || line.StartsWith(name + "{", StringComparison.Ordinal))
                    return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            return null;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or FormatException) { return null; }
    }
}
