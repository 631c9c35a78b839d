using System.ComponentModel.DataAnnotations;

namespace B25.Alerting.Storage;

internal sealed class StorageOptions
{
    public const string Section = "Storage";

    /// <summary>SQLite connection string. The file is created, and the schema migrated, at start.</summary>
    [Required(AllowEmptyStrings = false)]
    public string ConnectionString { get; set; } = "Data Source=b25-alerting.db";
}
