using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Pipeline;

internal enum BusTransport { InMemory, RabbitMq }

internal sealed class BusOptions : IValidatableObject
{
    public const string Section = "Bus";

    public BusTransport Transport { get; set; } = BusTransport.InMemory;

    public RabbitMqOptions RabbitMq { get; set; } = new();

    /// <summary>
    /// Notifications processed in parallel (always in order within one alert group). Unset: <see cref="PartitionsFor"/> decides by
    /// the storage.
    /// </summary>
    [Range(1, 256)]
    public int? Partitions { get; set; }

    /// <summary>
    /// The partitions in use: <see cref="Partitions"/>, or by default 32 on SQLite (an apply spends most of its time waiting for a
    /// core or the single writer, and more of them at once share the writer's commits) and 16 on PostgreSQL (each apply in
    /// progress holds a database connection: replicas times partitions stay well within the server's 100 connections).
    /// </summary>
    public int PartitionsFor(Storage.StorageProviderKind storage) => Partitions ?? (storage == Storage.StorageProviderKind.Sqlite ? 32 : 16);

    /// <summary>
    /// Accepted notifications held in memory for the bus at most (queued to publish and, on the in-memory transport,
    /// until applied). Past it, notifications stay in the journal only (they are durable from the 2xx on) and are
    /// published from it, oldest first, as the state machine frees room: memory stays bounded under a storm.
    /// </summary>
    [Range(16, 1_000_000)]
    public int MaxHeldNotifications { get; set; } = 1000;

    /// <summary>
    /// RabbitMq: how long the bus may stay unhealthy while the broker accepts connections before the process exits (code 75)
    /// to be started again; 0 turns the watch off. Never while the broker is down.
    /// </summary>
    public TimeSpan ExitWhenStuckAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// RabbitMq: while this replica's bus is not healthy (the broker down or restarting, the receive endpoint reconnecting),
    /// notifications journaled this long ago and still unapplied are applied by the replica itself, without the bus
    /// (<see cref="ApplyWithoutBus"/>); 0 turns it off, and pages then wait for the bus.
    /// </summary>
    public TimeSpan ApplyLocallyAfter { get; set; } = TimeSpan.FromSeconds(2);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Transport == BusTransport.RabbitMq
            && (string.IsNullOrWhiteSpace(RabbitMq.Uri) || !System.Uri.TryCreate(RabbitMq.Uri, UriKind.Absolute, out var uri)
                || uri.Scheme is not ("amqp" or "amqps" or "rabbitmq" or "rabbitmqs")))
        {
            yield return new ValidationResult(
                "Bus:Transport is RabbitMq but Bus:RabbitMq:Uri is not an amqp:// or amqps:// URI (e.g. amqp://user:pass@host:5672/vhost).",
                [nameof(RabbitMq)]);
        }
        if (ExitWhenStuckAfter < TimeSpan.Zero)
            yield return new ValidationResult("Bus:ExitWhenStuckAfter must not be negative (0 turns the watch off).", [nameof(ExitWhenStuckAfter)]);
        if (ApplyLocallyAfter < TimeSpan.Zero)
            yield return new ValidationResult("Bus:ApplyLocallyAfter must not be negative (0 turns applying without the bus off).", [nameof(ApplyLocallyAfter)]);
    }
}

internal sealed class RabbitMqOptions
{
    public string? Uri { get; set; }

    /// <summary>Queue of journaled notifications (a quorum queue).</summary>
    public string Queue { get; set; } = "b25-alerting-notifications";

    /// <summary>Queue of the risk manager's answers (EmergencyStopAcknowledged / Rejected), a quorum queue.</summary>
    public string AnswersQueue { get; set; } = "b25-alerting-risk-answers";
}
