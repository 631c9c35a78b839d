using System.Diagnostics;

namespace B25.Alerting.Tests.Runbooks;

/// <summary>
/// Debian's chromium, headless (the flags environment.md found to work here): the DOM a real browser builds
/// from a page. tests/run-all.sh installs the package when it is missing.
/// </summary>
internal static class Chromium
{
    public static async Task<string> DumpDomAsync(string url, int timeoutMs = 60_000)
    {
        var executable = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "chromium")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("chromium is not installed: apt-get install -y --no-install-recommends chromium (tests/run-all.sh does it)");
        var profile = Directory.CreateTempSubdirectory("b25-chromium-");
        try
        {
            var info = new ProcessStartInfo(executable)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in new[]
                     {
                         "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", $"--user-data-dir={profile.FullName}", "--dump-dom", url,
                     })
                info.ArgumentList.Add(argument);
            using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start chromium");
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(timeoutMs);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true); // this process and its children only
                await process.WaitForExitAsync();
                throw new TimeoutException($"chromium did not dump {url} within {timeoutMs} ms:\n{await errors}");
            }
            var dom = await output;
            if (process.ExitCode != 0 || dom.Length == 0)
                throw new InvalidOperationException($"chromium exited with {process.ExitCode} on {url}:\n{await errors}");
            return dom;
        }
        finally
        {
            try { profile.Delete(recursive: true); } catch (IOException) { }
        }
    }
}
