namespace B25.Alerting.Enrichment;

/// <summary>Why a query to a source failed; the <c>reason</c> label of <c>b25_alerting_enrichment_failures_total</c>.</summary>
internal enum FailureReason
{
    /// <summary>Still running at the deadline (<c>Enrichment:Timeout</c>).</summary>
    Timeout,
    /// <summary>Connection refused or reset, host not found.</summary>
    Unreachable,
    /// <summary>A non-2xx answer (5xx, 422, 429...).</summary>
    HttpError,
    /// <summary>A 2xx answer that is not the API's JSON.</summary>
    BadResponse,
    /// <summary>The source refused the query itself (Prometheus <c>bad_data</c>, Loki 400).</summary>
    QueryError,
}

/// <summary>A source answered badly or not at all; the message is fit for the result and the log.</summary>
internal sealed class SourceException(FailureReason reason, string message) : Exception(message)
{
    public FailureReason Reason { get; } = reason;
}

internal static class FailureReasons
{
    public static string Label(this FailureReason reason) => reason switch
    {
        FailureReason.Timeout => "timeout",
        FailureReason.Unreachable => "unreachable",
        FailureReason.HttpError => "http_error",
        FailureReason.BadResponse => "bad_response",
        FailureReason.QueryError => "query_error",
        _ => "other",
    };
}
