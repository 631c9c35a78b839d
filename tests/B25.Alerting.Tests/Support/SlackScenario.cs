using System.Net;

namespace B25.Alerting.Tests.Support;

/// <summary>The service in-process with a Slack stand-in and an authorized client: the frame of the Slack scenarios.</summary>
public abstract class SlackScenario : IDisposable
{
    protected SlackScenario()
    {
        Slack = new SlackStandIn();
        Factory = new AlertingFactory(Slack);
        Client = Factory.Authorized();
    }

    protected SlackStandIn Slack { get; }
    protected AlertingFactory Factory { get; }
    protected HttpClient Client { get; }

    /// <summary>Posts a webhook body and expects it accepted.</summary>
    protected async Task Send(string body) =>
        Assert.Equal(HttpStatusCode.OK, (await Client.PostAsync("/webhooks/alertmanager", AlertingFactory.Json(body))).StatusCode);

    public void Dispose()
    {
        Client.Dispose();
        Factory.Dispose();
        Slack.Dispose();
        GC.SuppressFinalize(this);
    }
}
