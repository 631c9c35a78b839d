using System.Diagnostics;

namespace B25.Alerting.Tests.Support;

/// <summary>
/// A throwaway RabbitMQ node from Debian's rabbitmq-server, on 127.0.0.1 and free ports, with its own
/// epmd, started for the test collection and stopped after it. Fails loudly when the package is missing.
/// </summary>
public sealed class RabbitMqBroker : IAsyncLifetime
{
    private const string ServerBinary = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    private const string CtlBinary = "/usr/lib/rabbitmq/bin/rabbitmqctl";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"b25-rabbit-{Guid.NewGuid():N}");
    private Process? _epmd;
    private Process? _server;
    private Dictionary<string, string> _env = [];

    public int AmqpPort { get; private set; }
    public string NodeName { get; private set; } = "";
    public string Uri => $"amqp://guest:guest@127.0.0.1:{AmqpPort}/";

    public async Task InitializeAsync()
    {
        if (!File.Exists(ServerBinary))
            throw new InvalidOperationException(
                $"{ServerBinary} is missing: install Debian's rabbitmq-server (tests/run-all.sh does it) to run the RabbitMQ transport tests.");
        Directory.CreateDirectory(Path.Combine(_dir, "home"));
        AmqpPort = ServiceProcess.FreePort();
        var distPort = ServiceProcess.FreePort();
        var epmdPort = ServiceProcess.FreePort();
        NodeName = $"b25test{AmqpPort}@localhost";
        await File.WriteAllTextAsync(Path.Combine(_dir, "rabbitmq.conf"),
            $"listeners.tcp.default = 127.0.0.1:{AmqpPort}\nlog.console = false\nlog.file.level = warning\n");
        await File.WriteAllTextAsync(Path.Combine(_dir, "enabled_plugins"), "[].\n");
        _env = new Dictionary<string, string>
        {
            ["HOME"] = Path.Combine(_dir, "home"),
            ["RABBITMQ_NODENAME"] = NodeName,
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = AmqpPort.ToString(),
            ["RABBITMQ_DIST_PORT"] = distPort.ToString(),
            ["ERL_EPMD_PORT"] = epmdPort.ToString(),
            ["ERL_EPMD_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}",
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(_dir, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(_dir, "log"),
            ["RABBITMQ_CONFIG_FILE"] = Path.Combine(_dir, "rabbitmq.conf"),
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(_dir, "enabled_plugins"),
            ["RABBITMQ_PID_FILE"] = Path.Combine(_dir, "node.pid"),
        };
        // Our own epmd in the foreground, so we hold its PID and stop it ourselves.
        _epmd = Start("/usr/bin/epmd", ["-address", "127.0.0.1", "-port", epmdPort.ToString()]);
        _server = Start(ServerBinary, []);
        // The node registers with epmd a moment after start; until then await_startup fails at once.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        int code;
        string output;
        do
        {
            (code, output) = await RunCtlAsync(TimeSpan.FromSeconds(60), "-n", NodeName, "await_startup", "--timeout", "60");
            if (code == 0 || _server.HasExited) break;
            await Task.Delay(500);
        } while (DateTime.UtcNow < deadline);
        if (code != 0)
        {
            await DisposeAsync();
            throw new InvalidOperationException($"RabbitMQ did not start (rabbitmqctl await_startup exited {code}): {output}");
        }
    }

    /// <summary>A new virtual host the guest user may use: exchanges and bindings no other test shares. Its amqp:// URI.</summary>
    public async Task<string> AddVirtualHostAsync(string name)
    {
        foreach (var args in new[] { new[] { "add_vhost", name }, ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"] })
        {
            var (code, output) = await RunCtlAsync(TimeSpan.FromSeconds(120), ["-n", NodeName, .. args]);
            if (code != 0) throw new InvalidOperationException($"rabbitmqctl {args[0]} failed ({code}): {output}");
        }
        return $"amqp://guest:guest@127.0.0.1:{AmqpPort}/{name}";
    }

    public async Task<string> ListQueuesAsync()
    {
        // rabbitmqctl boots an Erlang VM of its own: seconds on a quiet machine, more than 30 on a loaded one.
        var (code, output) = await RunCtlAsync(TimeSpan.FromSeconds(120), "-n", NodeName, "list_queues", "name", "type", "--no-table-headers", "-q");
        if (code != 0) throw new InvalidOperationException($"rabbitmqctl list_queues failed ({code}): {output}");
        return output;
    }

    public async Task DisposeAsync()
    {
        if (_server is { HasExited: false })
        {
            await RunCtlAsync(TimeSpan.FromSeconds(30), "-n", NodeName, "stop");
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { await _server.WaitForExitAsync(wait.Token); }
            catch (OperationCanceledException) { _server.Kill(entireProcessTree: true); await _server.WaitForExitAsync(); }
        }
        if (_epmd is { HasExited: false })
        {
            _epmd.Kill();
            await _epmd.WaitForExitAsync();
        }
        _server?.Dispose();
        _epmd?.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private Process Start(string file, string[] args)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in _env) info.Environment[k] = v;
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private async Task<(int Code, string Output)> RunCtlAsync(TimeSpan timeout, params string[] args)
    {
        var info = new ProcessStartInfo(CtlBinary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in _env) info.Environment[k] = v;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); await process.WaitForExitAsync(); }
        return (process.ExitCode, await stdout + await stderr);
    }
}

[CollectionDefinition(Name)]
public sealed class RabbitMqCollection : ICollectionFixture<RabbitMqBroker>
{
    public const string Name = "RabbitMQ broker";
}
