using B25.Alerting.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddAlerting();

var app = builder.Build();
await app.UseAlertingAsync();
await app.RunAsync();

public partial class Program;
