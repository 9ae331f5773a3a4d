using System.Net;

namespace Qcow.Oci;

/// <summary>Bounded retries with exponential backoff; the wait itself is <see cref="RegistryOptions.Delay"/>.</summary>
internal sealed class RetryPolicy(RegistryOptions options)
{
    /// <summary>True while <paramref name="failures"/> transient failures may still be retried.</summary>
    public bool CanRetry(int failures) => failures <= options.MaxRetries;

    /// <summary>Waits before retry number <paramref name="failures"/> (1 = first retry).</summary>
    public Task WaitAsync(int failures, CancellationToken cancel)
    {
        double ms = options.RetryDelay.TotalMilliseconds * Math.Pow(2, Math.Max(0, failures - 1));
        return options.Delay(TimeSpan.FromMilliseconds(Math.Min(ms, options.MaxRetryDelay.TotalMilliseconds)), cancel);
    }

    /// <summary>Statuses worth retrying: the server or a proxy in its way is momentarily unable to answer.</summary>
    public static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests or HttpStatusCode.InternalServerError
            or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    /// <summary>Exceptions worth retrying: connection refused or reset, a body cut short, a timeout. Not a cancellation, not TLS.</summary>
    public static bool IsTransient(Exception e, CancellationToken cancel)
    {
        if (cancel.IsCancellationRequested || IsTlsFailure(e)) return false;
        return e is HttpRequestException or IOException || (e is TaskCanceledException && e.InnerException is TimeoutException);
    }

    /// <summary>A certificate that does not verify will not verify on a retry either.</summary>
    public static bool IsTlsFailure(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is System.Security.Authentication.AuthenticationException) return true;
        return false;
    }
}
