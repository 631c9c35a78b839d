using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Storage;

/// <summary>Where the service keeps its state.</summary>
internal enum StorageProviderKind
{
    /// <summary>One SQLite file, one process (the embedded default: nothing to run beside the service).</summary>
    Sqlite,

    /// <summary>PostgreSQL: any number of replicas share it.</summary>
    Postgres,
}

internal sealed class StorageOptions
{
    public const string Section = "Storage";

    /// <summary>Sqlite (default, one process) or Postgres (several replicas).</summary>
    public StorageProviderKind Provider { get; set; } = StorageProviderKind.Sqlite;

    /// <summary>
    /// SQLite: <c>Data Source=&lt;file&gt;</c>; PostgreSQL: an Npgsql connection string
    /// (<c>Host=..;Database=..;Username=..;Password=..</c>). The schema is created and migrated at start.
    /// </summary>
    [Required(AllowEmptyStrings = false)]
    public string ConnectionString { get; set; } = "Data Source=b25-alerting.db";

    /// <summary>
    /// How long processed notifications stay in the journal. Incidents, alerts and deliveries are kept;
    /// a copy of a notification older than this is journaled again and the state machine, which
    /// remembers every alert occurrence, still delivers nothing for it.
    /// </summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan JournalRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// How long a replica owns a delivery target (a Slack channel, a PagerDuty routing key) after it last
    /// renewed the claim. A replica that dies mid-send holds its targets this long at most; then another
    /// replica takes them over. Longer than the slowest single call (Slack:RequestTimeout).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:02", "00:10:00")]
    public TimeSpan ClaimLease { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Names this replica in claims and logs; default: host name and process id.</summary>
    public string ReplicaName { get; set; } = "";

    /// <summary>The replica name in use.</summary>
    public string Replica => string.IsNullOrWhiteSpace(ReplicaName) ? $"{Environment.MachineName}:{Environment.ProcessId}" : ReplicaName;
}
