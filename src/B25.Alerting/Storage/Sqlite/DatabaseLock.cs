using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace B25.Alerting.Storage.Sqlite;

/// <summary>
/// One process per SQLite file: two processes on one file both claim and send the same deliveries,
/// and a rolling deploy starts the new process before the old one stops. Until several replicas run
/// on PostgreSQL, the process holds an exclusive lock on a side file, <c>&lt;database&gt;.lock</c>, for
/// its whole life. The operating system drops the lock when the process ends, however it ends
/// (kill -9 included), so there is never a stale lock to clean up; for the same reason the file is
/// left in place (deleting it would let two processes lock two different files of one name).
/// In-memory and temporary databases belong to one process anyway and need no lock.
/// </summary>
internal sealed class DatabaseLock : IDisposable
{
    private FileStream? _held;

    public DatabaseLock(IOptions<StorageOptions> options)
    {
        DatabasePath = FilePath(options.Value.ConnectionString);
        LockPath = DatabasePath is null ? null : DatabasePath + ".lock";
    }

    /// <summary>The database file, absolute as SQLite resolves it; null for an in-memory or temporary database.</summary>
    public string? DatabasePath { get; }

    public string? LockPath { get; }

    /// <summary>Takes the lock, or returns false when another process holds it.</summary>
    public bool TryAcquire()
    {
        if (LockPath is null || _held is not null) return true;
        try
        {
            // FileShare.None makes .NET take flock(LOCK_EX | LOCK_NB) on Unix (a share mode on Windows):
            // a second process's attempt fails at once instead of waiting.
            _held = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            return true;
        }
        catch (IOException ex) when (IsHeldElsewhere(ex))
        {
            return false;
        }
    }

    public void Dispose()
    {
        _held?.Dispose();
        _held = null;
    }

    // EWOULDBLOCK from flock (11 on Linux, 35 on macOS); a sharing or lock violation on Windows. Any
    // other failure (no such folder, read-only file system) is not "another process" and is thrown.
    private static bool IsHeldElsewhere(IOException ex) =>
        ex.GetType() == typeof(IOException) && ex.HResult is 11 or 35 or unchecked((int)0x80070020) or unchecked((int)0x80070021);

    /// <summary>The file a connection string opens, resolved the way Microsoft.Data.Sqlite and SQLite do.</summary>
    internal static string? FilePath(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (builder.Mode == SqliteOpenMode.Memory) return null;
        var source = builder.DataSource;
        if (source.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
        {
            // A URI file name: file:data.db, file:///abs/data.db, file:data.db?mode=memory&cache=shared.
            var query = source.IndexOf('?');
            if (query >= 0 && source[(query + 1)..].Split('&').Any(p => p.Equals("mode=memory", StringComparison.OrdinalIgnoreCase)))
                return null;
            source = Uri.UnescapeDataString(query < 0 ? source[5..] : source[5..query]);
            if (source.StartsWith("//", StringComparison.Ordinal))
            {
                var path = source.IndexOf('/', 2);
                source = path < 0 ? "" : source[path..];
            }
        }
        if (source is "" or ":memory:") return null;
        const string dataDirectory = "|DataDirectory|";
        if (source.StartsWith(dataDirectory, StringComparison.OrdinalIgnoreCase))
        {
            var folder = AppDomain.CurrentDomain.GetData("DataDirectory") as string;
            source = Path.Combine(string.IsNullOrEmpty(folder) ? AppContext.BaseDirectory : folder, source[dataDirectory.Length..].TrimStart('/', '\\'));
        }
        // Relative to the working folder, as SQLite opens it (not to the content root).
        return Path.GetFullPath(source);
    }
}
