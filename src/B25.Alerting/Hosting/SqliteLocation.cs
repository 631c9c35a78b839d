using Microsoft.Data.Sqlite;

namespace B25.Alerting.Hosting;

/// <summary>
/// A relative SQLite file name is taken from the service's folder (next to the binary), not from the folder
/// it happens to be started in: started from elsewhere, it must find its database, not make a new, empty one.
/// </summary>
internal static class SqliteLocation
{
    public static string Anchor(Storage.StorageProviderKind provider, string connectionString, string folder)
    {
        if (provider != Storage.StorageProviderKind.Sqlite || string.IsNullOrWhiteSpace(connectionString)) return connectionString;
        SqliteConnectionStringBuilder builder;
        try
        {
            builder = new SqliteConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException)
        {
            return connectionString; // malformed: the storage names it when it opens
        }
        var source = builder.DataSource;
        if (builder.Mode == SqliteOpenMode.Memory || source is "" or ":memory:" || Path.IsPathRooted(source)
            || source.StartsWith("file:", StringComparison.OrdinalIgnoreCase) || source.StartsWith('|'))
            return connectionString;
        builder.DataSource = Path.GetFullPath(Path.Combine(folder, source));
        return builder.ConnectionString;
    }
}
