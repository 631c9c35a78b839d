using System.Text.Json;
using System.Text.Json.Nodes;
using B25.Alerting.Delivery;
using B25.Alerting.Delivery.Slack;
using B25.Alerting.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Tests.Slack;

/// <summary>
/// Every attempt of a Slack call checks that this replica still owns the channel: waits for a Retry-After, a token or a
/// quick retry can outlast the claim's lease, and the replica that took the channel over may have sent the message already.
/// </summary>
public sealed class SlackClaimTests
{
    private static readonly DeliveredMessage Message = new("C1", "1700000000.000100");

    private static PendingDelivery Note(long id) =>
        new(id, "inc1", "slack", "#ops", "note", 2, $"note-{id}", JsonSerializer.Serialize(new SlackNote("a note"), DeliveryJsonContext.Default.SlackNote), 0, 0);

    private static SlackNotifier Notifier(ISlackApi api)
    {
        var options = Options.Create(new SlackOptions { BotToken = "xoxb-test" });
        return new SlackNotifier(api, new SlackRenderer(options, Options.Create(new TemplateOptions()), Presentation.IncidentPresenterTests.Presenter()),
            options, TimeProvider.System, NullLogger<SlackNotifier>.Instance);
    }

    [Fact]
    public async Task A_reply_retried_after_a_Retry_After_is_not_sent_when_the_channel_passed_to_another_replica_meanwhile()
    {
        var api = new RateLimitedOnceApi();
        var recorder = new Recorder(loseClaimAtCheck: 2);

        await Assert.ThrowsAsync<ClaimLostException>(() => Notifier(api).DeliverAsync(PagerDuty.PagerDutyEventsTests.Incident(1), "#ops",
            [Note(1)], Message, recorder, CancellationToken.None));

        Assert.Equal(2, recorder.Checks); // before the first attempt, and again before the retry
        Assert.Equal(1, api.Posts); // only the attempt Slack answered 429: the retry was not made
    }

    [Fact]
    public async Task A_reply_retried_after_a_Retry_After_is_sent_once_by_the_replica_that_still_owns_the_channel()
    {
        var api = new RateLimitedOnceApi();
        var recorder = new Recorder(loseClaimAtCheck: null);

        var result = await Notifier(api).DeliverAsync(PagerDuty.PagerDutyEventsTests.Incident(1), "#ops", [Note(1)], Message, recorder,
            CancellationToken.None);

        Assert.Equal(DeliveryOutcomeKind.Sent, Assert.Single(result.Outcomes).Kind);
        Assert.Equal(2, recorder.Checks);
        Assert.Equal(2, api.Posts);
        Assert.Equal([1L], recorder.Marked);
    }

    /// <summary>Answers the first post 429 with Retry-After 1 s, the next ones ok.</summary>
    private sealed class RateLimitedOnceApi : ISlackApi
    {
        private int _posts;

        public int Posts => _posts;

        public Task<SlackCallResult> PostMessageAsync(string channel, string text, JsonArray? blocks, string? threadTs, SlackMessageMetadata? metadata,
            CancellationToken cancellationToken) =>
            Task.FromResult(Interlocked.Increment(ref _posts) == 1
                ? new SlackCallResult(SlackCallStatus.Transient, Error: "HTTP 429", RetryAfter: TimeSpan.FromSeconds(1))
                : new SlackCallResult(SlackCallStatus.Ok, channel, $"1700000001.{_posts:D6}"));

        public Task<SlackCallResult> UpdateAsync(string channel, string ts, string text, JsonArray? blocks, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("no edit expected");

        public Task<SlackFindResult> FindMessageAsync(string channelId, string? threadTs, DateTimeOffset oldest, string eventType,
            IReadOnlyDictionary<string, string> payload, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("no search expected");

        public Task<SlackChannelResult> ResolveChannelAsync(string channel, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("no look-up expected");
    }

    private sealed class Recorder(int? loseClaimAtCheck) : IDeliveryRecorder
    {
        public int Checks { get; private set; }

        public List<long> Marked { get; } = [];

        public Task EnsureOwnerAsync(TimeSpan callTime, CancellationToken cancellationToken)
        {
            Checks++;
            if (Checks == loseClaimAtCheck) throw new ClaimLostException("slack", "#ops");
            return Task.CompletedTask;
        }

        public Task MarkSendingAsync(IReadOnlyCollection<long> deliveryIds, CancellationToken cancellationToken)
        {
            Marked.AddRange(deliveryIds);
            return Task.CompletedTask;
        }

        public Task RecordAsync(IReadOnlyList<DeliveryOutcome> outcomes, DeliveredMessage? newMessage, CancellationToken cancellationToken) =>
            Task.CompletedTask;
    }
}
