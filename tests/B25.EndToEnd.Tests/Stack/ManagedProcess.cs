using System.Diagnostics;
using System.Text;

namespace B25.EndToEnd.Tests.Stack;

/// <summary>
/// A server started by the test: output kept in a log file for the failure message, stopped by its
/// own PID (never by name) and waited for, so that nothing is left behind.
/// </summary>
internal sealed class ManagedProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _logGate = new();

    private ManagedProcess(string name, Process process, string logPath, StreamWriter log)
    {
        Name = name;
        _process = process;
        LogPath = logPath;
        _log = log;
    }

    public string Name { get; }

    public string LogPath { get; }

    public bool HasExited => _process.HasExited;

    public static ManagedProcess Start(string name, string fileName, IEnumerable<string> arguments, string workingDirectory,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var logPath = Path.Combine(workingDirectory, name + ".log");
        var log = new StreamWriter(logPath, append: false, Encoding.UTF8) { AutoFlush = true };
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var managed = new ManagedProcess(name, process, logPath, log);
        process.OutputDataReceived += (_, e) => managed.Write(e.Data);
        process.ErrorDataReceived += (_, e) => managed.Write(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start {fileName}");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return managed;
    }

    public string Tail(int lines = 40)
    {
        lock (_logGate)
        {
            try
            {
                using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(stream);
                var all = reader.ReadToEnd().Split('\n');
                return $"--- {Name} (last {lines} lines of {LogPath}) ---\n" + string.Join('\n', all.TakeLast(lines));
            }
            catch (IOException ex)
            {
                return $"--- {Name}: log unreadable: {ex.Message}";
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }
        finally
        {
            _process.Dispose();
            lock (_logGate)
            {
                _log.Dispose();
            }
        }
    }

    private void Write(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_logGate)
        {
            try
            {
                _log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }
}
