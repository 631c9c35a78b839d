using System.Net;
using B25.Simulator.Faults;
using B25.Simulator.Simulation;
using Microsoft.Extensions.Options;

namespace B25.Simulator.Hosting;

/// <summary>Owns the seven service listeners and keeps each one open or closed as the service-down switch says.</summary>
internal sealed partial class ListenerSupervisor : IHostedService, IAsyncDisposable
{
    private readonly FaultBoard _faults;
    private readonly ILogger<ListenerSupervisor> _logger;
    private readonly Dictionary<string, ServiceListener> _listeners = new(StringComparer.OrdinalIgnoreCase);

    public ListenerSupervisor(SimulatedServices services, FaultBoard faults, IOptions<SimulatorOptions> options, ILogger<ListenerSupervisor> logger)
    {
        _faults = faults;
        _logger = logger;
        var address = IPAddress.Parse(options.Value.Host);
        for (var i = 0; i < services.All.Count; i++)
        {
            var service = services.All[i];
            _listeners[service.Name] = new ServiceListener(service, address, options.Value.PortFor(service.Name, i));
        }
    }

    public IEnumerable<ServiceListener> Listeners => _listeners.Values;

    public ServiceListener? Find(string service) => _listeners.GetValueOrDefault(service);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var listener in _listeners.Values)
        {
            await ReconcileAsync(listener.Simulation.Name, cancellationToken);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var listener in _listeners.Values)
        {
            await listener.StopAsync(cancellationToken);
        }
    }

    /// <summary>Opens or closes the service's listener to match its service-down switch.</summary>
    public async Task ReconcileAsync(string service, CancellationToken cancellationToken)
    {
        var listener = _listeners[service];
        var down = _faults.IsActive(service, Fault.ServiceDown);
        if (down && listener.IsListening)
        {
            await listener.StopAsync(cancellationToken);
            LogStopped(_logger, service, listener.Port);
        }
        else if (!down && !listener.IsListening)
        {
            await listener.StartAsync(cancellationToken);
            LogListening(_logger, service, listener.Port);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var listener in _listeners.Values)
        {
            await listener.DisposeAsync();
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "{Service} listening on port {Port}")]
    private static partial void LogListening(ILogger logger, string service, int port);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "{Service} listener closed (service-down) on port {Port}")]
    private static partial void LogStopped(ILogger logger, string service, int port);
}
