using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace B25.Alerting.Storage;

internal sealed class StorageHealthCheck(Database database) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            return await database.PingAsync(cancellationToken)
                ? HealthCheckResult.Healthy("SQLite answers")
                : HealthCheckResult.Unhealthy("SQLite did not answer");
        }
        catch (Exception ex)
        {
            return HealthCheckResult.Unhealthy("SQLite unavailable", ex);
        }
    }
}
