using B25.Simulator.Faults;
using Microsoft.Extensions.Options;

namespace B25.Simulator.Simulation;

/// <summary>Moves every simulated service forward by the real time elapsed, every tick.</summary>
internal sealed partial class SimulationClock(
    SimulatedServices services,
    FaultBoard faults,
    TimeProvider time,
    IOptions<SimulatorOptions> options,
    ILogger<SimulationClock> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.TickInterval, time);
        var last = time.GetTimestamp();
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var now = time.GetTimestamp();
                var seconds = time.GetElapsedTime(last, now).TotalSeconds;
                last = now;
                foreach (var service in services.All)
                {
                    try
                    {
                        service.Advance(seconds, faults.ActiveFor(service.Name));
                    }
                    catch (Exception ex)
                    {
                        LogTickFailed(logger, ex, service.Name);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "Simulation tick failed for {Service}")]
    private static partial void LogTickFailed(ILogger logger, Exception exception, string service);
}
