using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace B25.FaultSuite;

internal static partial class Posix
{
    public const int SigInt = 2;
    public const int SigQuit = 3;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    public static bool IsRoot => GetEuid() == 0;

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts a command with stdout+stderr appended to a log file; the returned process is the command itself (exec).</summary>
    public static Process StartLogged(string file, IEnumerable<string> args, string log, IDictionary<string, string> env)
    {
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec \"$0\" \"$@\" >>\"$B25_FAULTS_LOG\" 2>&1");
        info.ArgumentList.Add(file);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["B25_FAULTS_LOG"] = log;
        foreach (var (k, v) in env) info.Environment[k] = v;
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
    }

    /// <summary>SIGTERM by PID, then wait; SIGKILL only if it does not exit in time.</summary>
    public static void Stop(Process process, TimeSpan grace)
    {
        if (process.HasExited) return;
        _ = Kill(process.Id, SigTerm);
        if (!process.WaitForExit(grace)) _ = Kill(process.Id, SigKill);
        process.WaitForExit();
    }

    /// <summary>Runs a short command to its end; (exit code, output).</summary>
    public static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout,
        IDictionary<string, string>? env = null)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) info.Environment[k] = v;
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _ = Kill(process.Id, SigKill);
            await process.WaitForExitAsync();
            return (-1, "timed out: " + await stdout + await stderr);
        }
        return (process.ExitCode, (await stdout + await stderr).Trim());
    }
}

/// <summary>
/// The B25.Alerting service (the B25.Alerting.dll built next to the suite) as a child process on a fixed port, so it
/// can be killed with SIGKILL and started again on the same database and address. Like an orchestrator, the host starts
/// the process again when it exits by itself (a refused start, or the service ending itself, e.g. its bus stuck), half a
/// second after the exit; a process the suite killed or stopped stays down until the suite starts it.
/// </summary>
internal sealed class ServiceHost : IDisposable
{
    private static readonly TimeSpan RestartAfter = TimeSpan.FromMilliseconds(500);
    private readonly Dictionary<string, string> _env;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly object _gate = new();
    private readonly Timer _supervisor;
    private Process? _process;
    private bool _wantedUp;
    private bool _disposed;

    public ServiceHost(string workDir, IDictionary<string, string> env, string name = "service")
    {
        Port = Posix.FreePort();
        BaseUrl = $"http://127.0.0.1:{Port}";
        Name = name;
        Log = Path.Combine(workDir, $"{name}.log");
        _env = new Dictionary<string, string>(env);
        _supervisor = new Timer(_ => Supervise(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    /// <summary>The replica's name (Storage:ReplicaName) in a cluster; "service" alone.</summary>
    public string Name { get; }
    public int Port { get; }
    public string BaseUrl { get; }
    public string Log { get; }
    public int Starts { get; private set; }
    public bool Running
    {
        get { lock (_gate) return _process is { HasExited: false }; }
    }

    /// <summary>Times the process exited by itself and was started again; with the exit codes seen.</summary>
    public int Exits { get; private set; }
    public List<int> ExitCodes { get; } = [];

    public static string Dll => Path.Combine(AppContext.BaseDirectory, "B25.Alerting.dll");

    /// <summary>
    /// Starts the process and waits until it answers /health/live (with <paramref name="ready"/>: /health/ready); one that
    /// exits meanwhile is started again (<see cref="Supervise"/>) until <paramref name="budget"/> is spent.
    /// </summary>
    public async Task StartAsync(bool ready = true, TimeSpan? budget = null)
    {
        Launch();
        if (!await WaitAsync(ready, budget ?? TimeSpan.FromSeconds(60)))
            throw new TimeoutException($"the service did not become {(ready ? "ready" : "live")}; see {Log}");
    }

    /// <summary>Starts the process (unless it runs) and returns at once: a scenario that times a fault into the service's start.</summary>
    public void Launch()
    {
        lock (_gate)
        {
            _wantedUp = true;
            if (_process is { HasExited: false }) return;
            LaunchLocked();
        }
    }

    private void LaunchLocked()
    {
        File.AppendAllText(Log, $"---- start {Starts + 1} at {DateTime.UtcNow:HH:mm:ss.fff} ----\n");
        _process?.Dispose();
        _process = Posix.StartLogged("dotnet", [Dll, "--urls", BaseUrl], Log, _env);
        Starts++;
    }

    private void Supervise()
    {
        lock (_gate)
        {
            if (_disposed || !_wantedUp || _process is not { HasExited: true } exited || DateTime.Now - exited.ExitTime < RestartAfter) return;
            Exits++;
            ExitCodes.Add(exited.ExitCode);
            File.AppendAllText(Log, $"---- exited by itself with code {exited.ExitCode}; started again ----\n");
            LaunchLocked();
        }
    }

    /// <summary>Waits until the process answers /health/ready (or /health/live). False when <paramref name="budget"/> ran out first.</summary>
    public async Task<bool> WaitAsync(bool ready, TimeSpan budget)
    {
        var deadline = DateTime.UtcNow + budget;
        while (DateTime.UtcNow < deadline)
        {
            if (Running)
            {
                try
                {
                    using var r = await _http.GetAsync(BaseUrl + (ready ? "/health/ready" : "/health/live"));
                    if (r.IsSuccessStatusCode) return true;
                }
                catch (HttpRequestException) { }
                catch (TaskCanceledException) { }
            }
            await Task.Delay(100);
        }
        return false;
    }

    /// <summary>
    /// Waits until the process's RabbitMQ bus is healthy (<c>b25_alerting_bus_healthy 1</c> on /metrics): readiness alone does not
    /// say so, since a replica whose bus is down stays ready and applies its journal itself. False when the budget ran out first.
    /// </summary>
    public async Task<bool> WaitBusHealthyAsync(TimeSpan budget)
    {
        var deadline = DateTime.UtcNow + budget;
        while (DateTime.UtcNow < deadline)
        {
            if (Running)
            {
                try
                {
                    var metrics = await _http.GetStringAsync(BaseUrl + "/metrics");
                    if (System.Text.RegularExpressions.Regex.IsMatch(metrics, @"(?m)^b25_alerting_bus_healthy 1$")) return true;
                }
                catch (HttpRequestException) { }
                catch (TaskCanceledException) { }
            }
            await Task.Delay(100);
        }
        return false;
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush, as in a crash. Stays down until started.</summary>
    public void Kill()
    {
        lock (_gate)
        {
            _wantedUp = false;
            if (_process is not { HasExited: false } p) return;
            _ = Posix.Kill(p.Id, Posix.SigKill);
            p.WaitForExit();
        }
    }

    /// <summary>SIGTERM, then SIGKILL after 20 s. Stays down until started.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            _wantedUp = false;
            if (_process is { } p) Posix.Stop(p, TimeSpan.FromSeconds(20));
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        Stop();
        lock (_gate) _disposed = true;
        _supervisor.Dispose();
        _process?.Dispose();
        _http.Dispose();
    }
}

/// <summary>
/// A throwaway RabbitMQ node (Debian's rabbitmq-server, /work/shared/environment.md): root without systemd, 127.0.0.1,
/// free ports, its own epmd started in the foreground so the suite holds its PID. The node can be stopped and started
/// again on the same data folder (quorum queues survive), as a broker restart.
/// </summary>
internal sealed class RabbitNode : IDisposable
{
    private const string Bin = "/usr/lib/rabbitmq/bin";
    private readonly Dictionary<string, string> _env;
    private readonly string _dir;
    private readonly string _node;
    private readonly Process _epmd;
    private Process? _server;
    private bool _disposed;

    public static bool Installed => File.Exists(Path.Combine(Bin, "rabbitmq-server"));
    public string Uri { get; }
    public bool Running => _server is { HasExited: false };

    public RabbitNode(string workDir)
    {
        _dir = Path.Combine(workDir, "rabbitmq");
        Directory.CreateDirectory(Path.Combine(_dir, "home"));
        var amqp = Posix.FreePort();
        var dist = Posix.FreePort();
        var epmd = Posix.FreePort();
        _node = $"b25faults{amqp}@localhost";
        Uri = $"amqp://guest:guest@127.0.0.1:{amqp}/";
        File.WriteAllText(Path.Combine(_dir, "rabbitmq.conf"),
            $"listeners.tcp.default = 127.0.0.1:{amqp}\nlog.console = false\nlog.file.level = warning\n");
        File.WriteAllText(Path.Combine(_dir, "enabled_plugins"), "[].\n");
        _env = new Dictionary<string, string>
        {
            ["HOME"] = Path.Combine(_dir, "home"),
            ["RABBITMQ_NODENAME"] = _node,
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = amqp.ToString(CultureInfo.InvariantCulture),
            ["RABBITMQ_DIST_PORT"] = dist.ToString(CultureInfo.InvariantCulture),
            ["ERL_EPMD_PORT"] = epmd.ToString(CultureInfo.InvariantCulture),
            ["ERL_EPMD_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}",
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(_dir, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(_dir, "log"),
            ["RABBITMQ_CONFIG_FILE"] = Path.Combine(_dir, "rabbitmq.conf"),
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(_dir, "enabled_plugins"),
            ["RABBITMQ_PID_FILE"] = Path.Combine(_dir, "node.pid"),
        };
        _epmd = Posix.StartLogged("/usr/bin/epmd", ["-address", "127.0.0.1", "-port", epmd.ToString(CultureInfo.InvariantCulture)],
            Path.Combine(_dir, "epmd.log"), _env);
    }

    public async Task StartAsync()
    {
        _server = Posix.StartLogged(Path.Combine(Bin, "rabbitmq-server"), [], Path.Combine(_dir, "server.log"), _env);
        // await_startup fails at once while the node has not registered with epmd yet: retry.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline && !_server.HasExited)
        {
            var (code, _) = await CtlAsync(TimeSpan.FromSeconds(60), "await_startup", "--timeout", "60");
            if (code == 0) return;
            await Task.Delay(500);
        }
        throw new InvalidOperationException($"RabbitMQ did not start; see {_dir}/server.log");
    }

    /// <summary>Stops the node (rabbitmqctl stop, as an operator or a package upgrade would) and waits for its process to end.</summary>
    public async Task StopAsync()
    {
        if (_server is not { HasExited: false } server) return;
        await CtlAsync(TimeSpan.FromSeconds(60), "stop");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await server.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { Posix.Stop(server, TimeSpan.FromSeconds(10)); }
    }

    /// <summary>SIGKILL of the node's Erlang VM (its pid file), as in a crash or an OOM kill; waits for the process to end.</summary>
    public async Task KillAsync()
    {
        if (_server is not { HasExited: false } server) return;
        var pidFile = _env["RABBITMQ_PID_FILE"];
        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid)) _ = Posix.Kill(pid, Posix.SigKill);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try { await server.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            _ = Posix.Kill(server.Id, Posix.SigKill);
            await server.WaitForExitAsync();
        }
    }

    private Task<(int, string)> CtlAsync(TimeSpan timeout, params string[] args) =>
        Posix.RunAsync(Path.Combine(Bin, "rabbitmqctl"), ["-n", _node, .. args], timeout, _env);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        StopAsync().GetAwaiter().GetResult();
        _server?.Dispose();
        Posix.Stop(_epmd, TimeSpan.FromSeconds(10));
        _epmd.Dispose();
    }
}

/// <summary>
/// A small tmpfs mounted for the database, to fill up or turn read-only. Unmounted on dispose, also when the scenario
/// failed (and by <see cref="Cleanup"/> on Ctrl+C).
/// </summary>
internal sealed class TmpfsMount : IDisposable
{
    private readonly string _fill;

    public string Path { get; }
    public bool Mounted { get; private set; }

    private TmpfsMount(string path)
    {
        Path = path;
        _fill = System.IO.Path.Combine(path, "fill.bin");
    }

    public static async Task<TmpfsMount> MountAsync(string path, int sizeMb)
    {
        Directory.CreateDirectory(path);
        var mount = new TmpfsMount(path);
        var (code, output) = await Posix.RunAsync("mount", ["-t", "tmpfs", "-o", $"size={sizeMb}m,mode=0755", "tmpfs", path], TimeSpan.FromSeconds(10));
        if (code != 0) throw new InvalidOperationException($"mount -t tmpfs failed ({code}): {output}");
        mount.Mounted = true;
        Cleanup.Add(mount.Dispose);
        return mount;
    }

    /// <summary>Writes a file until the filesystem is full; returns the bytes written.</summary>
    public long Fill()
    {
        var chunk = new byte[1 << 20];
        long written = 0;
        using var file = new FileStream(_fill, FileMode.Create, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        try
        {
            while (true)
            {
                file.Write(chunk);
                written += chunk.Length;
            }
        }
        catch (IOException) { }
        // The last partial megabyte: fill byte by byte in 4 KiB pages.
        try
        {
            var page = new byte[4096];
            while (true)
            {
                file.Write(page);
                file.Flush();
                written += page.Length;
            }
        }
        catch (IOException) { }
        return written;
    }

    public void Unfill()
    {
        try { File.Delete(_fill); } catch (IOException) { }
    }

    /// <summary>mount -o remount,ro|rw: (exit code, output). Linux refuses ro (EBUSY) while a file on it is open for writing.</summary>
    public Task<(int Code, string Output)> RemountAsync(bool readOnly) =>
        Posix.RunAsync("mount", ["-o", readOnly ? "remount,ro" : "remount,rw", Path], TimeSpan.FromSeconds(10));

    public void Dispose()
    {
        if (!Mounted) return;
        Mounted = false;
        Posix.RunAsync("mount", ["-o", "remount,rw", Path], TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        var (code, output) = Posix.RunAsync("umount", [Path], TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
        if (code != 0)
        {
            // Still busy (a process we started is slow to exit): detach it now, it goes away with the last user.
            (code, output) = Posix.RunAsync("umount", ["-l", Path], TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
            if (code != 0) Console.Error.WriteLine($"could not unmount {Path}: {output}");
        }
    }
}

/// <summary>Last-resort cleanup on Ctrl+C / SIGTERM: unmounts, stops brokers and services the suite started.</summary>
internal static class Cleanup
{
    private static readonly List<Action> Actions = [];

    public static void Add(Action action)
    {
        lock (Actions) Actions.Add(action);
    }

    public static void RunAll()
    {
        Action[] actions;
        lock (Actions)
        {
            actions = [.. Actions];
            Actions.Clear();
        }
        foreach (var a in actions.Reverse())
        {
            try { a(); } catch (Exception ex) { Console.Error.WriteLine($"cleanup: {ex.Message}"); }
        }
    }
}
