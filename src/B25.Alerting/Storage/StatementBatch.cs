using System.Collections.Concurrent;
using System.Data.Common;
using Dapper;

namespace B25.Alerting.Storage;

/// <summary>One SQL statement and its named parameters (a null value is SQL NULL).</summary>
internal sealed record SqlStatement(string Sql, IReadOnlyList<KeyValuePair<string, object?>> Parameters)
{
    /// <summary>The parameters as Dapper takes them, for a statement run on its own.</summary>
    public DynamicParameters DapperParameters()
    {
        var parameters = new DynamicParameters();
        foreach (var (name, value) in Parameters) parameters.Add(name, value);
        return parameters;
    }
}

/// <summary>
/// Writes of one transaction queued and sent together when the transaction needs them (before its next read, before its
/// commit), in the order they were queued. Where the connection batches commands (PostgreSQL), they go in one round trip
/// instead of one each: applying a new incident queues half a dozen writes, and on a 2-core machine each round trip costs the
/// database and the service more than the statement itself. On SQLite (in process) they run one after another, each on a command
/// the connection keeps for its SQL (<see cref="Sqlite.PreparedCommands"/>).
/// </summary>
internal sealed class StatementBatch
{
    private readonly List<SqlStatement> _statements = [];

    public int Count => _statements.Count;

    public void Add(string sql, params KeyValuePair<string, object?>[] parameters) => _statements.Add(new SqlStatement(sql, parameters));

    public void Add(SqlStatement statement) => _statements.Add(statement);

    /// <summary>Runs what is queued in <paramref name="transaction"/> and empties the queue (also when a statement fails: the transaction is lost then).</summary>
    public Task FlushAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken) =>
        RunAsync(connection, transaction, scalar: false, cancellationToken);

    /// <summary>
    /// As <see cref="FlushAsync"/>, and returns the first column of the first statement's first row (null when it returned no
    /// row, or SQL NULL).
    /// </summary>
    public Task<object?> FlushScalarAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken) =>
        RunAsync(connection, transaction, scalar: true, cancellationToken);

    private async Task<object?> RunAsync(DbConnection connection, DbTransaction transaction, bool scalar, CancellationToken cancellationToken)
    {
        if (_statements.Count == 0) return null;
        var statements = _statements.ToArray();
        _statements.Clear();
        object? first = null;
        if (statements.Length > 1 && connection.CanCreateBatch)
        {
            await using var batch = connection.CreateBatch();
            batch.Transaction = transaction;
            foreach (var statement in statements)
            {
                var command = batch.CreateBatchCommand();
                command.CommandText = statement.Sql;
                foreach (var (name, value) in statement.Parameters)
                {
                    var parameter = command.CreateParameter();
                    parameter.ParameterName = name;
                    parameter.Value = value ?? DBNull.Value;
                    command.Parameters.Add(parameter);
                }
                batch.BatchCommands.Add(command);
            }
            if (!scalar)
            {
                await batch.ExecuteNonQueryAsync(cancellationToken);
                return null;
            }
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            if (await reader.ReadAsync(cancellationToken) && !await reader.IsDBNullAsync(0, cancellationToken)) first = reader.GetValue(0);
            while (await reader.NextResultAsync(cancellationToken)) { } // the rest runs; an error in it surfaces here
            return first;
        }
        if (connection is Microsoft.Data.Sqlite.SqliteConnection sqlite)
        {
            // In process: one after another, each on the connection's kept command for its SQL (compiled once, not per call).
            for (var i = 0; i < statements.Length; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var value = Sqlite.PreparedCommands.Run(sqlite, transaction, statements[i].Sql, statements[i].Parameters, scalar: i == 0 && scalar);
                if (i == 0) first = value;
            }
            return first;
        }
        for (var i = 0; i < statements.Length; i++)
        {
            var command = new CommandDefinition(statements[i].Sql, statements[i].DapperParameters(), transaction, cancellationToken: cancellationToken);
            if (i == 0 && scalar) first = await connection.ExecuteScalarAsync(command) is { } v and not DBNull ? v : null;
            else await connection.ExecuteAsync(command);
        }
        return first;
    }

    public static KeyValuePair<string, object?> P(string name, object? value) => new(name, value);
}

/// <summary>
/// The names of a multi-row statement's parameters (<c>f0</c>, <c>f1</c>, ...), made once per stem and index instead of per
/// row of every insert.
/// </summary>
internal static class IndexedName
{
    private const int Kept = 128;
    private static readonly ConcurrentDictionary<string, string[]> ByStem = new(StringComparer.Ordinal);

    public static string Of(string stem, int index) =>
        index < Kept ? ByStem.GetOrAdd(stem, static s => Enumerable.Range(0, Kept).Select(i => s + i).ToArray())[index] : stem + index;
}
