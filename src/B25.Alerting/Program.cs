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
await app.RunAsync();
return 0;

public partial class Program;
