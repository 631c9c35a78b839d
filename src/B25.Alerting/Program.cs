using B25.Alerting.Hosting;
using B25.Alerting.Storage;

// Settings and templates sit next to the binary, wherever the service is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddAlerting();

var app = builder.Build();
if (RenderCommand.IsRender(args))
    return await RenderCommand.RunAsync(app, args); // what a notification looks like in Slack and email: no servers, nothing stored
try
{
    await app.UseAlertingAsync();
}
catch (StartRefusedException)
{
    await app.DisposeAsync(); // flushes the log line that says why
    return 1;
}
var exit = app.Services.GetRequiredService<B25.Alerting.Pipeline.ServiceExit>(); // taken now: the services are disposed when RunAsync returns
try
{
    await app.RunAsync();
}
catch (IOException ex) when (ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
{
    // Taken between the check in UseAlertingAsync and Kestrel's bind: still one line, still exit 1.
    await Console.Error.WriteLineAsync($"Cannot listen: {ex.Message}; not starting");
    return 1;
}
return exit.Code; // 0, or why a part of the service ended it

public partial class Program;
