using System.Net;
using System.Net.Http.Json;
using B25.Simulator.Control;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace B25.Simulator.Tests;

/// <summary>The control API in-process; the seven service listeners are real sockets on ephemeral ports.</summary>
public sealed class ControlApiTests : IClassFixture<ControlApiTests.Simulator>
{
    private readonly Simulator _simulator;

    public ControlApiTests(Simulator simulator) => _simulator = simulator;

    [Fact]
    public async Task Lists_the_seven_services_listening_on_loopback()
    {
        var services = await _simulator.ServicesAsync();
        Assert.Equal(
            ["market-data", "order-execution", "strategy-engine", "account-monitor", "risk-manager", "config-service", "dashboard-server"],
            services.Select(s => s.Service));
        Assert.All(services, s => Assert.True(s.Listening && s.Port > 0));

        using var http = new HttpClient();
        foreach (var service in services)
        {
            var text = await http.GetStringAsync($"http://127.0.0.1:{service.Port}/metrics");
            Assert.NotEmpty(Exposition.Parse(text).Named("http_requests_total"));
            Assert.Contains(service.Service, await http.GetStringAsync($"http://127.0.0.1:{service.Port}/health"));
        }
    }

    [Fact]
    public async Task Service_down_closes_the_listener_and_clearing_reopens_it_on_the_same_port()
    {
        var control = _simulator.CreateClient();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var port = (await _simulator.ServicesAsync()).Single(s => s.Service == "config-service").Port;

        var down = await control.PostAsync("/faults/config-service/service-down", null);
        Assert.Equal(HttpStatusCode.OK, down.StatusCode);
        Assert.False((await down.Content.ReadFromJsonAsync<ServiceState>())!.Listening);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync($"http://127.0.0.1:{port}/metrics"));
        Assert.Contains("service-down", (await control.GetFromJsonAsync<Dictionary<string, string[]>>("/faults"))!["config-service"]);

        var up = await control.DeleteAsync("/faults/config-service/service-down");
        Assert.Equal(HttpStatusCode.OK, up.StatusCode);
        var state = (await up.Content.ReadFromJsonAsync<ServiceState>())!;
        Assert.True(state.Listening);
        Assert.Equal(port, state.Port);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{port}/metrics")).StatusCode);
    }

    [Fact]
    public async Task A_domain_fault_shows_on_the_scrape_of_its_service()
    {
        var control = _simulator.CreateClient();
        var port = (await _simulator.ServicesAsync()).Single(s => s.Service == "account-monitor").Port;
        using var http = new HttpClient();

        Assert.Equal(HttpStatusCode.OK, (await control.PostAsync("/faults/account-monitor/drawdown", null)).StatusCode);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            double drawdown;
            do
            {
                await Task.Delay(100);
                drawdown = Exposition.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/metrics")).Single("account_monitor_drawdown_pct");
            }
            while (drawdown <= 5 && DateTime.UtcNow < deadline);

            Assert.True(drawdown > 5);
        }
        finally
        {
            await control.DeleteAsync("/faults/account-monitor/drawdown");
        }
    }

    [Theory]
    [InlineData("/faults/nowhere/service-down", HttpStatusCode.NotFound)]
    [InlineData("/faults/risk-manager/meteor-strike", HttpStatusCode.NotFound)]
    [InlineData("/faults/risk-manager/drawdown", HttpStatusCode.BadRequest)]
    public async Task Unknown_or_foreign_faults_are_refused(string path, HttpStatusCode expected)
    {
        var response = await _simulator.CreateClient().PostAsync(path, null);
        Assert.Equal(expected, response.StatusCode);
        Assert.Contains("error", await response.Content.ReadAsStringAsync());
    }

    public sealed class Simulator : WebApplicationFactory<Program>
    {
        internal async Task<ServiceState[]> ServicesAsync() =>
            (await CreateClient().GetFromJsonAsync<ServiceState[]>("/services"))!;

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseSetting("Simulator:PortBase", "0");
            builder.UseSetting("Simulator:Seed", "3");
            builder.UseSetting("Simulator:TickInterval", "00:00:00.050");
        }
    }
}
