using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace B25.Alerting.Bench;

internal static partial class Posix
{
    public const int SigInt = 2;
    public const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static bool PortFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Starts a command with stdout+stderr appended to a log file; the returned process is the command itself (exec).</summary>
    /// <param name="user">Run as this OS user (the shell and, through exec, the command): .NET switches user in the forked child.</param>
    public static Process StartLogged(string file, IEnumerable<string> args, string log, IDictionary<string, string> env, string? user = null,
        string? workingDirectory = null)
    {
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        if (user is not null) info.UserName = user;
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec \"$0\" \"$@\" >>\"$B25_BENCH_LOG\" 2>&1");
        info.ArgumentList.Add(file);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["B25_BENCH_LOG"] = log;
        foreach (var (k, v) in env) info.Environment[k] = v;
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
    }

    /// <summary>SIGTERM by PID, then wait; SIGKILL only if it does not exit in time.</summary>
    public static void Stop(Process process, TimeSpan grace)
    {
        if (process.HasExited) return;
        _ = Kill(process.Id, SigTerm);
        if (!process.WaitForExit(grace)) process.Kill();
        process.WaitForExit();
    }

    /// <summary>utime + stime of a process (and cutime + cstime of its reaped children when asked), in seconds (USER_HZ 100).</summary>
    public static double CpuSeconds(int pid, bool includeReapedChildren = false)
    {
        if (StatFields(pid) is not { } fields) return double.NaN;
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        if (includeReapedChildren) ticks += long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
        return ticks / 100.0;
    }

    /// <summary>The parent PID of a process, or -1 when it is gone.</summary>
    public static int ParentPid(int pid) => StatFields(pid) is { } fields ? int.Parse(fields[1], CultureInfo.InvariantCulture) : -1;

    /// <summary>/proc/PID/stat after "pid (comm) ": fields[0] is the state (field 3 of proc(5)).</summary>
    private static string[]? StatFields(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// CPU seconds the whole machine spent busy (user, nice, system, irq, softirq over all cores) and stolen by the
    /// hypervisor (steal), from /proc/stat.
    /// </summary>
    public static (double Busy, double Steal) MachineCpuSeconds()
    {
        var f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        double T(int i) => f.Length > i ? long.Parse(f[i], CultureInfo.InvariantCulture) / 100.0 : 0;
        return (T(1) + T(2) + T(3) + T(6) + T(7), T(8));
    }

    /// <summary>The 1-minute load average now.</summary>
    public static double Load1() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

    public static long StatusKb(int pid, string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                    return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        return -1;
    }
}

/// <summary>
/// The B25.Alerting service as a child process: with a fresh SQLite database in its folder, unless the
/// environment names another storage provider (then its connection string comes with the environment).
/// </summary>
internal sealed class ServiceProcess : IDisposable
{
    private readonly Process _process;
    public int Pid => _process.Id;
    public string Name { get; }
    public string BaseUrl { get; }
    public string Log { get; }

    private ServiceProcess(Process process, string name, string baseUrl, string log)
    {
        _process = process;
        Name = name;
        BaseUrl = baseUrl;
        Log = log;
    }

    public static async Task<ServiceProcess> StartAsync(string serviceDll, string workDir, string name, IDictionary<string, string> env, HttpClient http)
    {
        var port = Posix.FreePort();
        var dir = Path.Combine(workDir, name);
        Directory.CreateDirectory(dir);
        if (!env.TryGetValue("Storage__Provider", out var provider) || provider == "Sqlite")
            env = new Dictionary<string, string>(env) { ["Storage__ConnectionString"] = $"Data Source={Path.Combine(dir, "a.db")}" };
        var log = Path.Combine(dir, "service.log");
        var process = Posix.StartLogged("dotnet", [serviceDll, "--urls", $"http://127.0.0.1:{port}"], log, env);
        var service = new ServiceProcess(process, name, $"http://127.0.0.1:{port}", log);
        Cleanup.Add(service);
        // Generous: on a loaded 2-core machine two replicas starting at once (JIT, migrations in turn) can take a while.
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"service exited with {process.ExitCode}; see {log}");
            try
            {
                using var r = await http.GetAsync(service.BaseUrl + "/health/ready");
                if (r.IsSuccessStatusCode) return service;
            }
            catch (HttpRequestException) { }
            await Task.Delay(200);
        }
        service.Dispose();
        throw new TimeoutException($"service not ready in 120 s; see {log}");
    }

    public long PeakRssMb => Posix.StatusKb(Pid, "VmHWM") / 1024;
    public long RssMb => Posix.StatusKb(Pid, "VmRSS") / 1024;

    public void Dispose()
    {
        Cleanup.Remove(this);
        Posix.Stop(_process, TimeSpan.FromSeconds(20));
    }
}

/// <summary>
/// The service replicas of one phase (one for SQLite), on the same database and queue, each on its own port
/// with its own replica name. The bench spreads its requests over them round-robin, as Alertmanager replicas
/// pointed at different service replicas, or a load balancer, would.
/// </summary>
internal sealed class ServiceCluster : IDisposable
{
    private long _next = -1;
    public IReadOnlyList<ServiceProcess> Replicas { get; }

    private ServiceCluster(IReadOnlyList<ServiceProcess> replicas) => Replicas = replicas;

    /// <summary>The replica for the next request (round-robin).</summary>
    public ServiceProcess Next() => Replicas[(int)((ulong)Interlocked.Increment(ref _next) % (ulong)Replicas.Count)];

    /// <param name="envOf">The environment of replica i (its name and anything else of its own).</param>
    public static async Task<ServiceCluster> StartAsync(string serviceDll, string workDir, string name, int replicas,
        Func<int, IDictionary<string, string>> envOf, HttpClient http)
    {
        // Started at once, as a rollout would: their migrations take turns under PostgreSQL's advisory lock.
        var starts = Enumerable.Range(0, replicas)
            .Select(i => ServiceProcess.StartAsync(serviceDll, workDir, replicas == 1 ? name : $"{name}-r{i + 1}", envOf(i), http)).ToList();
        try
        {
            return new ServiceCluster(await Task.WhenAll(starts));
        }
        catch
        {
            foreach (var start in starts.Where(s => s.IsCompletedSuccessfully)) start.Result.Dispose();
            throw;
        }
    }

    /// <summary>The largest VmHWM of the replicas, in MB.</summary>
    public long PeakRssMb => Replicas.Max(r => r.PeakRssMb);

    public long RssMb => Replicas.Sum(r => r.RssMb);

    public void Dispose()
    {
        foreach (var replica in Replicas) replica.Dispose();
    }
}

/// <summary>
/// A throwaway RabbitMQ node per /work/shared/environment.md: root without systemd, everything on
/// 127.0.0.1, non-default ports, data in a temp folder; stopped with rabbitmqctl, then its epmd.
/// </summary>
internal sealed class RabbitBroker : IDisposable
{
    private const string Bin = "/usr/lib/rabbitmq/bin";
    private readonly Process _server;
    private readonly Dictionary<string, string> _env;
    private readonly string _node;
    private readonly string _dir;
    private readonly Process _epmd;
    public string Uri { get; }

    /// <summary>The Erlang VM of the node (from its pid file), for CPU accounting.</summary>
    public int? NodePid =>
        File.Exists(_env["RABBITMQ_PID_FILE"]) && int.TryParse(File.ReadAllText(_env["RABBITMQ_PID_FILE"]).Trim(), out var pid) ? pid : null;

    private RabbitBroker(Process server, Process epmd, Dictionary<string, string> env, string node, string uri, string dir)
    {
        _dir = dir;
        _epmd = epmd;
        _server = server;
        _env = env;
        _node = node;
        Uri = uri;
    }

    public static async Task<RabbitBroker> StartAsync(string workDir, int amqpPort)
    {
        if (!File.Exists(Path.Combine(Bin, "rabbitmq-server")))
            throw new InvalidOperationException("RabbitMQ is not installed: apt-get install -y --no-install-recommends rabbitmq-server");
        int dist = amqpPort + 20000, epmd = amqpPort - 1300;
        foreach (var p in new[] { amqpPort, dist, epmd })
            if (!Posix.PortFree(p)) throw new InvalidOperationException($"port {p} is taken; pass another --rabbit-port");
        var dir = Path.Combine(workDir, "rabbitmq");
        Directory.CreateDirectory(Path.Combine(dir, "home"));
        await File.WriteAllTextAsync(Path.Combine(dir, "rabbitmq.conf"), $"listeners.tcp.default = 127.0.0.1:{amqpPort}\nlog.console = false\n");
        await File.WriteAllTextAsync(Path.Combine(dir, "enabled_plugins"), "[].\n");
        var node = $"b25bench{amqpPort}@localhost";
        var env = new Dictionary<string, string>
        {
            ["HOME"] = Path.Combine(dir, "home"),
            ["RABBITMQ_NODENAME"] = node,
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = amqpPort.ToString(CultureInfo.InvariantCulture),
            ["RABBITMQ_DIST_PORT"] = dist.ToString(CultureInfo.InvariantCulture),
            ["ERL_EPMD_PORT"] = epmd.ToString(CultureInfo.InvariantCulture),
            ["ERL_EPMD_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}",
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(dir, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(dir, "log"),
            ["RABBITMQ_CONFIG_FILE"] = Path.Combine(dir, "rabbitmq.conf"),
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(dir, "enabled_plugins"),
            ["RABBITMQ_PID_FILE"] = Path.Combine(dir, "node.pid"),
        };
        // epmd in the foreground as our own child (not the daemon the node would fork), so we can stop and reap it.
        var epmdProcess = Posix.StartLogged("epmd", ["-port", epmd.ToString(CultureInfo.InvariantCulture), "-address", "127.0.0.1"], Path.Combine(dir, "epmd.log"), env);
        await Task.Delay(300);
        var server = Posix.StartLogged(Path.Combine(Bin, "rabbitmq-server"), [], Path.Combine(dir, "server.log"), env);
        var broker = new RabbitBroker(server, epmdProcess, env, node, $"amqp://guest:guest@127.0.0.1:{amqpPort}/", dir);
        Cleanup.Add(broker);
        // await_startup fails at once while the node has not registered with epmd yet: retry.
        var ctl = -1;
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (ctl != 0 && DateTime.UtcNow < deadline && !server.HasExited)
        {
            ctl = await broker.CtlAsync(TimeSpan.FromSeconds(60), "await_startup", "--timeout", "60");
            if (ctl != 0) await Task.Delay(1000);
        }
        if (ctl != 0)
        {
            broker.Dispose();
            throw new InvalidOperationException($"RabbitMQ did not start; see {dir}/server.log");
        }
        return broker;
    }

    private async Task<int> CtlAsync(TimeSpan timeout, params string[] args)
    {
        using var ctl = Posix.StartLogged(Path.Combine(Bin, "rabbitmqctl"), ["-n", _node, .. args], Path.Combine(_dir, "ctl.log"), _env);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await ctl.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Posix.Stop(ctl, TimeSpan.FromSeconds(5));
            return -1;
        }
        return ctl.ExitCode;
    }

    public void Dispose()
    {
        Cleanup.Remove(this);
        if (!_server.HasExited) CtlAsync(TimeSpan.FromSeconds(60), "stop").GetAwaiter().GetResult();
        if (!_server.WaitForExit(TimeSpan.FromSeconds(30))) Posix.Stop(_server, TimeSpan.FromSeconds(10));
        // Our epmd outlives the node: ask exactly that one (our port) to exit, then reap it.
        using (var kill = Posix.StartLogged("epmd", ["-port", _env["ERL_EPMD_PORT"], "-kill"], Path.Combine(_dir, "epmd.log"), _env))
            kill.WaitForExit(TimeSpan.FromSeconds(10));
        Posix.Stop(_epmd, TimeSpan.FromSeconds(10));
        _epmd.Dispose();
        _server.Dispose();
    }
}
