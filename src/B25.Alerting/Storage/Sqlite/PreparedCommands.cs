using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace B25.Alerting.Storage.Sqlite;

/// <summary>
/// SQLite commands kept per connection with their compiled statements, reused for the same SQL. Microsoft.Data.Sqlite compiles a
/// command's SQL when it first runs and keeps the compiled statement while the command lives; Dapper makes a new command for
/// every call, so every write compiled its statement again: compiling (SQLite's parser and code generator) was about 40 % of
/// SQLite's share of the service's CPU while new incidents were applied. The writes of a transaction (<see cref="StatementBatch"/>),
/// the journal's insert and the apply's reads in the write turn run here instead, on the process's one writer connection, whose
/// commands live as long as it does.
/// </summary>
internal static class PreparedCommands
{
    // Statements kept per connection. The writes' SQL is a few dozen texts (a chunked insert has one text per chunk size); past
    // this, a statement runs on a command of its own, compiled for that call, as before.
    internal const int MaxPerConnection = 64;

    private static readonly ConditionalWeakTable<SqliteConnection, Dictionary<string, SqliteCommand>> Kept = new();

    /// <summary>
    /// Runs <paramref name="sql"/> with <paramref name="parameters"/> (a null value is SQL NULL) in <paramref name="transaction"/>;
    /// returns the first column of the first row when <paramref name="scalar"/> (null for no row or SQL NULL), else null.
    /// The connection must not be used by another thread meanwhile (the writer connection: only under the write turn).
    /// </summary>
    public static object? Run(SqliteConnection connection, DbTransaction? transaction, string sql,
        IReadOnlyList<KeyValuePair<string, object?>> parameters, bool scalar)
    {
        var command = Prepare(connection, transaction, sql, parameters, out var owned);
        try
        {
            if (!scalar)
            {
                command.ExecuteNonQuery();
                return null;
            }
            return command.ExecuteScalar() is { } value and not DBNull ? value : null;
        }
        finally
        {
            Release(command, owned);
        }
    }

    /// <summary>As <see cref="Run"/>, and reads every row the statement returns with <paramref name="read"/>.</summary>
    public static List<T> Rows<T>(SqliteConnection connection, DbTransaction? transaction, string sql,
        IReadOnlyList<KeyValuePair<string, object?>> parameters, Func<SqliteDataReader, T> read)
    {
        var command = Prepare(connection, transaction, sql, parameters, out var owned);
        try
        {
            var rows = new List<T>();
            using var reader = command.ExecuteReader();
            while (reader.Read()) rows.Add(read(reader));
            return rows;
        }
        finally
        {
            Release(command, owned);
        }
    }

    /// <summary>How many commands <paramref name="connection"/> keeps (tests).</summary>
    internal static int CountFor(SqliteConnection connection) => Kept.TryGetValue(connection, out var kept) ? kept.Count : 0;

    /// <summary>
    /// The connection's command for <paramref name="sql"/>, kept when there is room (else <paramref name="owned"/>: a command
    /// for this call only), bound to the transaction and the values.
    /// </summary>
    private static SqliteCommand Prepare(SqliteConnection connection, DbTransaction? transaction, string sql,
        IReadOnlyList<KeyValuePair<string, object?>> parameters, out bool owned)
    {
        var kept = Kept.GetOrCreateValue(connection);
        owned = false;
        if (!kept.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            if (kept.Count < MaxPerConnection) kept.Add(sql, command);
            else owned = true;
        }
        command.Transaction = (SqliteTransaction?)transaction;
        Bind(command.Parameters, parameters);
        return command;
    }

    /// <summary>
    /// Lets go of the call's values and transaction: a payload or a body would otherwise live as long as the connection. A command
    /// of the call's own is disposed.
    /// </summary>
    private static void Release(SqliteCommand command, bool owned)
    {
        if (owned)
        {
            command.Dispose();
            return;
        }
        foreach (SqliteParameter parameter in command.Parameters) parameter.Value = DBNull.Value;
        command.Transaction = null;
    }

    /// <summary>Sets the values; the same SQL comes with the same names in the same order, so the parameters are made once.</summary>
    private static void Bind(SqliteParameterCollection target, IReadOnlyList<KeyValuePair<string, object?>> parameters)
    {
        var same = target.Count == parameters.Count;
        for (var i = 0; same && i < parameters.Count; i++)
            same = SameName(target[i].ParameterName, parameters[i].Key);
        if (!same)
        {
            target.Clear();
            foreach (var (name, _) in parameters) target.Add(new SqliteParameter { ParameterName = Prefixed(name) });
        }
        for (var i = 0; i < parameters.Count; i++)
        {
            var value = parameters[i].Value ?? DBNull.Value;
            // Bound as Dapper bound them: a bool as 0 or 1.
            target[i].Value = value is bool b ? (b ? 1L : 0L) : value;
        }
    }

    /// <summary>
    /// The name as the SQL spells it (<c>@name</c>: the statements here use <c>@</c>, as Dapper's do). Microsoft.Data.Sqlite
    /// looks a name up as given and, when that fails, with each of <c>:</c>, <c>@</c> and <c>$</c> in front, each try a new
    /// string and its UTF-8 copy: a bare name cost four look-ups and seven allocations per value bound, on every run.
    /// </summary>
    private static string Prefixed(string name) => name.Length > 0 && name[0] is '@' or ':' or '$' ? name : "@" + name;

    private static bool SameName(string bound, string name) =>
        name.Length > 0 && name[0] is '@' or ':' or '$'
            ? string.Equals(bound, name, StringComparison.Ordinal)
            : bound.Length == name.Length + 1 && bound[0] == '@' && bound.AsSpan(1).SequenceEqual(name);
}
