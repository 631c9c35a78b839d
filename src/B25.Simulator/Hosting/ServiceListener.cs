using System.Net;
using B25.Simulator.Simulation;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace B25.Simulator.Hosting;

/// <summary>
/// The HTTP listener of one simulated service (/metrics and /health on its own port). Stopping it
/// really closes the socket, so a scrape is refused the way it is when the service is down.
/// </summary>
internal sealed class ServiceListener(ServiceSimulation simulation, IPAddress address, int port) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private WebApplication? _app;
    private int _disposed;

    public ServiceSimulation Simulation => simulation;

    /// <summary>The bound port; when 0 was configured, the one the OS gave on the first start (kept for restarts).</summary>
    public int Port { get; private set; } = port;

    public bool IsListening => _app is not null;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_app is not null)
            {
                return;
            }

            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "B25.Simulator" });
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(address, Port));
            var app = builder.Build();
            app.MapGet("/metrics", WriteMetricsAsync);
            app.MapGet("/health", () => TypedResults.Ok(new ServiceHealth(simulation.Name, "healthy")));
            await app.StartAsync(cancellationToken);
            if (Port == 0)
            {
                var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
                Port = new Uri(bound).Port;
            }

            _app = app;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_app is null)
            {
                return;
            }

            using var quick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            quick.CancelAfter(TimeSpan.FromSeconds(2));
            await _app.StopAsync(quick.Token);
            await _app.DisposeAsync();
            _app = null;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The DI container may dispose the supervisor twice (singleton + hosted-service factory).
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await StopAsync(CancellationToken.None);
        _gate.Dispose();
    }

    private async Task WriteMetricsAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await simulation.WriteExpositionAsync(context.Response.Body, context.RequestAborted);
    }
}

internal sealed record ServiceHealth(string Service, string Status);
