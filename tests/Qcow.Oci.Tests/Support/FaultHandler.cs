using System.Net;

namespace Qcow.Oci.Tests.Support;

/// <summary>
/// Injects failures between the client and the real registry. For each request, <see cref="Decide"/> picks what
/// happens: pass it through, answer with a status without forwarding, forward it and then lose the answer (as a
/// connection reset after the server acted), or forward it and alter the response body.
/// </summary>
public sealed class FaultHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    /// <summary>What to do with the n-th request (0-based) of a method and path.</summary>
    public Func<HttpRequestMessage, int, Fault> Decide { get; set; } = (_, _) => Fault.None;

    /// <summary>Awaited before <see cref="Decide"/>, with the request's cancellation: holds a request (null: none).</summary>
    public Func<HttpRequestMessage, CancellationToken, Task>? Before { get; set; }

    /// <summary>Every request seen, as "METHOD path".</summary>
    public List<string> Seen { get; } = [];

    private int _count;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancel)
    {
        int n;
        lock (Seen)
        {
            Seen.Add($"{request.Method} {request.RequestUri!.AbsolutePath}");
            n = _count++;
        }
        if (Before is { } before) await before(request, cancel);
        var fault = Decide(request, n);
        switch (fault.Kind)
        {
            case FaultKind.Status:
                return new HttpResponseMessage(fault.Status) { RequestMessage = request, Content = new ByteArrayContent([]) };
            case FaultKind.ResetAfterForwarding:
                (await base.SendAsync(request, cancel)).Dispose();
                throw new HttpRequestException("injected: connection reset by peer", new IOException("connection reset"));
            case FaultKind.CorruptBody:
                var response = await base.SendAsync(request, cancel);
                byte[] body = await response.Content.ReadAsByteArrayAsync(cancel);
                if (body.Length > 0) body[body.Length / 2] ^= 0x55;
                var altered = new ByteArrayContent(body);
                foreach (var h in response.Content.Headers) altered.Headers.TryAddWithoutValidation(h.Key, h.Value);
                response.Content = altered;
                return response;
            case FaultKind.StallBody:
                var stalling = await base.SendAsync(request, cancel);
                byte[] full = await stalling.Content.ReadAsByteArrayAsync(cancel);
                var stalled = new StreamContent(new StallingStream(full[..(full.Length / 2)]));
                foreach (var h in stalling.Content.Headers) stalled.Headers.TryAddWithoutValidation(h.Key, h.Value);
                stalling.Content = stalled;
                return stalling;
            default:
                return await base.SendAsync(request, cancel);
        }
    }
}

public enum FaultKind { None, Status, ResetAfterForwarding, CorruptBody, StallBody }

public sealed record Fault(FaultKind Kind, HttpStatusCode Status = HttpStatusCode.OK)
{
    public static Fault None { get; } = new(FaultKind.None);
    public static Fault Reply(HttpStatusCode status) => new(FaultKind.Status, status);
    public static Fault Reset { get; } = new(FaultKind.ResetAfterForwarding);
    public static Fault Corrupt { get; } = new(FaultKind.CorruptBody);
    public static Fault Stall { get; } = new(FaultKind.StallBody);
}

/// <summary>A body that sends its first bytes and then nothing, until the reader gives up (cancels).</summary>
internal sealed class StallingStream(byte[] start) : Stream
{
    private int _position;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancel = default)
    {
        if (_position < start.Length)
        {
            int n = Math.Min(buffer.Length, start.Length - _position);
            start.AsMemory(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }
        await Task.Delay(Timeout.Infinite, cancel);
        return 0;
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
