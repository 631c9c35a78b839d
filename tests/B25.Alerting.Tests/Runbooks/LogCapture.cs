using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace B25.Alerting.Tests.Runbooks;

/// <summary>Keeps every log line of a service under test, to assert on what it warns about at start.</summary>
internal sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<LogLine> _lines = new();

    public IReadOnlyList<LogLine> Lines => _lines.ToArray();

    public IReadOnlyList<LogLine> Warnings => Lines.Where(l => l.Level == LogLevel.Warning).ToList();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    /// <param name="TraceId">The trace of the span the line was written in (none: null).</param>
    /// <param name="Recorded">Whether that span was recorded (its data filled in for an exporter).</param>
    internal sealed record LogLine(string Category, LogLevel Level, int EventId, string Message, string? TraceId = null, bool Recorded = false);

    private sealed class Logger(LogCapture capture, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            capture._lines.Enqueue(new LogLine(category, logLevel, eventId.Id, formatter(state, exception),
                System.Diagnostics.Activity.Current?.TraceId.ToHexString(), System.Diagnostics.Activity.Current?.IsAllDataRequested == true));
    }
}
