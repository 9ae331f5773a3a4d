namespace Qcow.Oci;

/// <summary>
/// Reads a response body with a limit on how long one read may wait: a server that stops sending mid-body must not
/// hang a pull (HttpClient's timeout ends when the headers arrive). A stall is an <see cref="IOException"/>, which
/// callers treat as transient.
/// </summary>
internal sealed class StallGuard(TimeSpan timeout, CancellationToken cancel) : IDisposable
{
    private readonly CancellationTokenSource _source = CancellationTokenSource.CreateLinkedTokenSource(cancel);

    /// <summary>Reads into <paramref name="buffer"/>, failing when nothing arrives within the timeout.</summary>
    public async ValueTask<int> ReadAsync(Stream body, Memory<byte> buffer)
    {
        _source.CancelAfter(timeout);
        try
        {
            return await body.ReadAsync(buffer, _source.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new IOException($"nothing received for {timeout.TotalSeconds:0} s");
        }
    }

    /// <inheritdoc />
    public void Dispose() => _source.Dispose();
}
