using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Storage;

internal sealed class StorageOptions
{
    public const string Section = "Storage";

    /// <summary>SQLite connection string. The file is created, and the schema migrated, at start.</summary>
    [Required(AllowEmptyStrings = false)]
    public string ConnectionString { get; set; } = "Data Source=b25-alerting.db";

    /// <summary>
    /// How long processed notifications stay in the journal. Incidents, alerts and deliveries are kept;
    /// a copy of a notification older than this is journaled again and the state machine, which
    /// remembers every alert occurrence, still delivers nothing for it.
    /// </summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan JournalRetention { get; set; } = TimeSpan.FromDays(7);
}
