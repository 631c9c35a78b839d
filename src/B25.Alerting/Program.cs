using B25.Alerting.Hosting;

// Settings and templates sit next to the binary, wherever the service is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddAlerting();

var app = builder.Build();
await app.UseAlertingAsync();
await app.RunAsync();

public partial class Program;
