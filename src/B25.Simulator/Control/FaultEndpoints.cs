using B25.Simulator.Faults;
using B25.Simulator.Hosting;
using B25.Simulator.Simulation;
using Microsoft.AspNetCore.Http.HttpResults;

namespace B25.Simulator.Control;

/// <summary>The control API: which services run where, and the fault switches.</summary>
internal static partial class FaultEndpoints
{
    public static IEndpointRouteBuilder MapControl(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/health", () => TypedResults.Ok(new ServiceHealth("simulator", "healthy")));
        routes.MapGet("/services", ListServices);

        var faults = routes.MapGroup("/faults");
        faults.MapGet("/", ListFaults);
        faults.MapPost("/{service}/{fault}", SetFault);
        faults.MapDelete("/{service}/{fault}", ClearFault);
        faults.MapDelete("/", ClearAll);
        return routes;
    }

    private static Ok<ServiceState[]> ListServices(ListenerSupervisor listeners, FaultBoard board) =>
        TypedResults.Ok(listeners.Listeners.Select(l => Describe(l, board)).ToArray());

    private static Ok<Dictionary<string, string[]>> ListFaults(FaultBoard board) =>
        TypedResults.Ok(board.Snapshot().ToDictionary(kv => kv.Key, kv => kv.Value.Select(f => f.ToName()).Order().ToArray()));

    private static Task<Results<Ok<ServiceState>, NotFound<Problem>, BadRequest<Problem>>> SetFault(
        string service, string fault, SimulatedServices services, ListenerSupervisor listeners, FaultBoard board,
        ILoggerFactory loggers, CancellationToken cancellationToken) =>
        SwitchAsync(service, fault, on: true, services, listeners, board, loggers, cancellationToken);

    private static Task<Results<Ok<ServiceState>, NotFound<Problem>, BadRequest<Problem>>> ClearFault(
        string service, string fault, SimulatedServices services, ListenerSupervisor listeners, FaultBoard board,
        ILoggerFactory loggers, CancellationToken cancellationToken) =>
        SwitchAsync(service, fault, on: false, services, listeners, board, loggers, cancellationToken);

    private static async Task<Ok<Dictionary<string, string[]>>> ClearAll(
        ListenerSupervisor listeners, FaultBoard board, CancellationToken cancellationToken)
    {
        foreach (var (service, active) in board.Snapshot())
        {
            foreach (var fault in active)
            {
                board.Set(service, fault, on: false);
            }

            await listeners.ReconcileAsync(service, cancellationToken);
        }

        return ListFaults(board);
    }

    private static async Task<Results<Ok<ServiceState>, NotFound<Problem>, BadRequest<Problem>>> SwitchAsync(
        string service, string faultName, bool on, SimulatedServices services, ListenerSupervisor listeners,
        FaultBoard board, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var simulation = services.Find(service);
        if (simulation is null)
        {
            return TypedResults.NotFound(new Problem(
                $"unknown service '{service}'; known: {string.Join(", ", services.All.Select(s => s.Name))}"));
        }

        if (!FaultNames.TryParse(faultName, out var fault))
        {
            return TypedResults.NotFound(new Problem($"unknown fault '{faultName}'; known: {string.Join(", ", FaultNames.All)}"));
        }

        if (!simulation.Supports(fault))
        {
            return TypedResults.BadRequest(new Problem(
                $"{simulation.Name} has no '{faultName}' fault; it supports: {string.Join(", ", SupportedNames(simulation))}"));
        }

        if (board.Set(simulation.Name, fault, on))
        {
            LogSwitched(loggers.CreateLogger("B25.Simulator.Faults"), simulation.Name, fault.ToName(), on ? "on" : "off");
        }

        await listeners.ReconcileAsync(simulation.Name, cancellationToken);
        return TypedResults.Ok(Describe(listeners.Find(simulation.Name)!, board));
    }

    private static ServiceState Describe(ServiceListener listener, FaultBoard board) => new(
        listener.Simulation.Name,
        listener.Port,
        listener.IsListening,
        board.ActiveFor(listener.Simulation.Name).Select(f => f.ToName()).Order().ToArray(),
        SupportedNames(listener.Simulation));

    private static string[] SupportedNames(ServiceSimulation simulation) =>
        Enum.GetValues<Fault>().Where(simulation.Supports).Select(f => f.ToName()).ToArray();

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Fault {Fault} on {Service} switched {State}")]
    private static partial void LogSwitched(ILogger logger, string service, string fault, string state);
}

internal sealed record ServiceState(string Service, int Port, bool Listening, string[] Faults, string[] SupportedFaults);

internal sealed record Problem(string Error);
