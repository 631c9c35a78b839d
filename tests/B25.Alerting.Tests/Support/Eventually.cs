namespace B25.Alerting.Tests.Support;

public static class Eventually
{
    /// <summary>Polls until the condition holds; fails with the message after the timeout.</summary>
    public static async Task True(Func<bool> condition, string because, int timeoutMs = 10_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (DateTime.UtcNow < deadline)
        {
            if (condition()) return;
            await Task.Delay(25);
        }
        Assert.Fail($"Timed out after {timeoutMs} ms waiting for: {because}");
    }

    public static async Task True(Func<Task<bool>> condition, string because, int timeoutMs = 10_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(50);
        }
        Assert.Fail($"Timed out after {timeoutMs} ms waiting for: {because}");
    }

    /// <summary>Waits a moment and checks that nothing more happened.</summary>
    public static async Task Stays(Func<bool> condition, string because, int forMs = 1_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(forMs);
        while (DateTime.UtcNow < deadline)
        {
            Assert.True(condition(), because);
            await Task.Delay(25);
        }
    }
}
