using System.Net;
using B25.Simulator;
using B25.Simulator.Control;
using B25.Simulator.Faults;
using B25.Simulator.Hosting;
using B25.Simulator.Simulation;
using Microsoft.Extensions.Options;

var builder = WebApplication.CreateBuilder(args);

builder.Services.AddOptions<SimulatorOptions>()
    .BindConfiguration(SimulatorOptions.Section)
    .ValidateDataAnnotations()
    .Validate(o => IPAddress.TryParse(o.Host, out _), "Simulator:Host must be an IP address")
    .ValidateOnStart();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<FaultBoard>();
builder.Services.AddSingleton(sp =>
    new SimulatedServices(
        sp.GetRequiredService<IOptions<SimulatorOptions>>().Value.Seed is { } seed ? new Random(seed) : new Random(),
        sp.GetRequiredService<TimeProvider>()));
builder.Services.AddSingleton<ListenerSupervisor>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<ListenerSupervisor>());
builder.Services.AddHostedService<SimulationClock>();

// The control API listens on its own port, next to the seven service ports.
var control = builder.Configuration.GetSection(SimulatorOptions.Section).Get<SimulatorOptions>() ?? new SimulatorOptions();
// A bad Host falls back to loopback here and then fails the options validation with its message.
builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.TryParse(control.Host, out var host) ? host : IPAddress.Loopback, control.ControlPort));

var app = builder.Build();
app.MapControl();
app.Run();

public partial class Program;
