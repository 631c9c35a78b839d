using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using B25.Alerting.Tests.Support;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace B25.Alerting.Tests;

/// <summary>
/// Readiness on real file-system faults: the database on a file system of its own (mounting needs
/// root), the service as a process, the fault made by the kernel, not simulated in the service.
/// </summary>
[Collection(MountCollection.Name)]
public sealed class StorageReadinessTests(ITestOutputHelper output) : IDisposable
{
    private readonly SlackStandIn _slack = new();
    private readonly string _mount = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"b25-fs-{Guid.NewGuid():N}")).FullName;
    private ServiceProcess? _service;
    private bool _mounted;

    private string Image => _mount + ".img";

    public void Dispose()
    {
        if (_service is not null) _service.DisposeAsync().AsTask().GetAwaiter().GetResult();
        if (_mounted) Run("umount", "-l", _mount);
        try { Directory.Delete(_mount); } catch (IOException) { }
        File.Delete(Image);
        _slack.Dispose();
    }

    private string Database => Path.Combine(_mount, "b25-alerting.db");

    [MountFact]
    public async Task Disk_full_makes_ready_503_with_the_reason_and_freeing_space_makes_it_200_again()
    {
        Mount("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", _mount);
        _service = await ServiceProcess.StartAsync(ServiceProcess.Settings(Database, _slack));
        Assert.Equal("Healthy", (await Ready()).Status);

        // A young WAL grows with every commit, so a full disk fails the next write. (A WAL that has
        // been checkpointed and rewound has room for writes even on a full disk; they then succeed.)
        var filler = Path.Combine(_mount, "filler");
        await using (var fill = new FileStream(filler, FileMode.CreateNew))
        {
            var chunk = new byte[64 * 1024];
            try
            {
                while (true) fill.Write(chunk);
            }
            catch (IOException)
            {
                // ENOSPC: the file system is full.
            }
        }

        var last = await ReadyUntil(r => r.Code == HttpStatusCode.ServiceUnavailable, "ready is 503 once the disk is full");
        Assert.Equal("Unhealthy", last.Status);
        Assert.Contains("readiness probe", last.Description);
        Assert.Contains("full", last.Description);
        // What readiness says, the intake does: nothing can be journaled, so Alertmanager is told to retry.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await PostNotification());

        File.Delete(filler);
        last = await ReadyUntil(r => r.Code == HttpStatusCode.OK, "ready is 200 again once there is space");
        Assert.Equal("Healthy", last.Status);
        Assert.Equal(HttpStatusCode.OK, await PostNotification());
    }

    [MountFact(Ext4 = true)]
    public async Task Read_only_file_system_makes_ready_503_with_the_reason()
    {
        Run("truncate", "-s", "32M", Image);
        Run("mkfs.ext4", "-q", "-F", Image);
        // errors=remount-ro: what a disk error does to ext4 in production. A plain "mount -o remount,ro"
        // is refused (EBUSY) while SQLite holds the files open for writing.
        Mount("mount", "-o", "loop,errors=remount-ro", Image, _mount);
        var device = Path.GetFileName(Run("findmnt", "-n", "-o", "SOURCE", _mount).Trim());
        var trigger = $"/sys/fs/ext4/{device}/trigger_fs_error";
        Assert.True(File.Exists(trigger), $"{trigger} exists");

        _service = await ServiceProcess.StartAsync(ServiceProcess.Settings(Database, _slack));
        Assert.Equal("Healthy", (await Ready()).Status);

        await File.WriteAllTextAsync(trigger, "b25 readiness test");
        Assert.Contains("emergency_ro", Run("findmnt", "-n", "-o", "OPTIONS", _mount));

        var last = await ReadyUntil(r => r.Code == HttpStatusCode.ServiceUnavailable, "ready is 503 once the file system is read-only");
        Assert.Equal("Unhealthy", last.Status);
        Assert.Contains("readiness probe", last.Description);
        // An emergency read-only ext4 cannot be remounted read-write while mounted (the kernel refuses):
        // the way back to 200 is covered by the disk-full case.
    }

    /// <summary>A busy writer holding SQLite's write lock is not a fault: ready stays 200, Degraded.</summary>
    [SqliteFact]
    public async Task Busy_writer_keeps_ready_200_degraded()
    {
        using var factory = new AlertingFactory(_slack);
        using var client = factory.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/ready")).StatusCode);

        await using (var blocker = new SqliteConnection($"Data Source={factory.DatabasePath};Pooling=False"))
        {
            await blocker.OpenAsync();
            await using (var begin = blocker.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE;";
                await begin.ExecuteNonQueryAsync();
            }
            var clock = Stopwatch.StartNew();
            var busy = await client.GetAsync("/health/ready");
            Assert.Equal(HttpStatusCode.OK, busy.StatusCode);
            Assert.Equal("Degraded", (await Parse(busy)).Status);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"answered within the probe timeout ({clock.Elapsed})");
            await using var rollback = blocker.CreateCommand();
            rollback.CommandText = "ROLLBACK;";
            await rollback.ExecuteNonQueryAsync();
        }
        await Eventually.True(async () => (await Parse(await client.GetAsync("/health/ready"))).Status == "Healthy",
            "Healthy once the writer is done");
    }

    private async Task<HttpStatusCode> PostNotification()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AlertingFactory.Token);
        var body = new StringContent(Notifications.Body("g-disk", Notifications.Firing("d1")), Encoding.UTF8, "application/json");
        return (await http.PostAsync($"{_service!.BaseUrl}/webhooks/alertmanager", body)).StatusCode;
    }

    private sealed record Readiness(HttpStatusCode Code, string Status, string Description);

    private async Task<Readiness> Ready()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return await Parse(await http.GetAsync($"{_service!.BaseUrl}/health/ready"));
    }

    private static async Task<Readiness> Parse(HttpResponseMessage response)
    {
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var storage = body["checks"]!["storage"]!;
        return new Readiness(response.StatusCode, storage["status"]!.GetValue<string>(), storage["description"]?.GetValue<string>() ?? "");
    }

    private async Task<Readiness> ReadyUntil(Func<Readiness, bool> condition, string because)
    {
        Readiness? last = null;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            last = await Ready();
            if (condition(last))
            {
                output.WriteLine($"{because}: {last}");
                return last;
            }
            await Task.Delay(100);
        }
        Assert.Fail($"Timed out waiting for: {because}; last answer: {last}\n{_service!.Output}");
        return last!;
    }

    private void Mount(string command, params string[] args)
    {
        Run(command, args);
        _mounted = true;
    }

    internal static string Run(string command, params string[] args)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{command} {string.Join(' ', args)} exited with {process.ExitCode}: {error.Result}");
        return output.Result;
    }
}

/// <summary>
/// A test that mounts a file system: skipped, with the reason shown, where that is impossible (not
/// root, no loop devices or ext4 tools); everywhere else it runs and a failure to mount fails it.
/// </summary>
public sealed class MountFactAttribute : FactAttribute
{
    private bool _ext4;

    public MountFactAttribute()
    {
        if (TestStores.Postgres)
            Skip = "SQLite on a faulty disk: this run is for PostgreSQL";
        else if (!Environment.IsPrivilegedProcess)
            Skip = "needs root to mount a file system (tmpfs, loop ext4): run the tests as root to check readiness on real disk faults";
        else if (!File.Exists("/proc/filesystems"))
            Skip = "needs Linux to mount a file system";
    }

    /// <summary>Also needs an ext4 image on a loop device.</summary>
    public bool Ext4
    {
        get => _ext4;
        set
        {
            _ext4 = value;
            if (!value || Skip is not null) return;
            if (!File.Exists("/dev/loop-control"))
                Skip = "needs loop devices (/dev/loop-control) to mount an ext4 image";
            else if (!File.ReadAllText("/proc/filesystems").Contains("ext4"))
                Skip = "needs ext4 in the kernel";
            else if (!new[] { "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "/usr/bin/mkfs.ext4" }.Any(File.Exists))
                Skip = "needs mkfs.ext4 (e2fsprogs)";
        }
    }
}

/// <summary>Tests that mount file systems run one at a time: two of them must not race for a loop device.</summary>
[CollectionDefinition(Name)]
public sealed class MountCollection
{
    public const string Name = "Mounts";
}
