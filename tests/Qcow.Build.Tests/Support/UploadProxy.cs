using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;

namespace Qcow.Build.Tests.Support;

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of a registry that watches the blob uploads of a push made by another process
/// (a <c>dotnet publish</c>'s build node): it counts the closing <c>PUT …?digest=</c> requests in flight at once and
/// can hold the first ones until a given number are in flight, so only a push that uploads that many at the same
/// time gets past. The Host header passes through unchanged, so the registry's upload locations name the proxy.
/// </summary>
internal sealed class UploadProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _upstream;
    private readonly int _hold;
    private readonly TimeSpan _bound;
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private int _inFlight, _maxInFlight, _uploads;

    /// <summary>
    /// Forwards to <paramref name="upstream"/> (<c>127.0.0.1:port</c>). With <paramref name="hold"/> &gt; 1 the first
    /// uploads wait until that many are in flight; a push that never gets there would wait for ever, so after
    /// <paramref name="bound"/> they are let go and <see cref="HoldTimedOut"/> says so.
    /// </summary>
    public UploadProxy(string upstream, int hold, TimeSpan bound)
    {
        _upstream = IPEndPoint.Parse(upstream);
        _hold = hold;
        _bound = bound;
        if (hold <= 1) _released.SetResult();
        _listener.Start();
        _ = AcceptAsync();
    }

    /// <summary><c>127.0.0.1:port</c> of the proxy.</summary>
    public string Host => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>The most blob uploads that were in flight at the same time.</summary>
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    /// <summary>The blob uploads seen.</summary>
    public int Uploads => Volatile.Read(ref _uploads);

    /// <summary>Whether the held uploads had to be let go because fewer than the number asked for came at once.</summary>
    public bool HoldTimedOut { get; private set; }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using (client)
        using (var upstream = new TcpClient())
        {
            try
            {
                await upstream.ConnectAsync(_upstream, _stop.Token);
                var pending = new StrongBox<bool>();
                using var cancel = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                var up = PumpAsync(client.GetStream(), upstream.GetStream(), request: true, pending, cancel.Token);
                var down = PumpAsync(upstream.GetStream(), client.GetStream(), request: false, pending, cancel.Token);
                await Task.WhenAny(up, down);
                cancel.Cancel();
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
            {
                // A connection closed by either side, or the proxy stopping.
            }
        }
    }

    private async Task PumpAsync(Stream from, Stream to, bool request, StrongBox<bool> pending, CancellationToken cancel)
    {
        var buffer = new byte[81920];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buffer, cancel)) > 0)
            {
                // HttpClient sends one request at a time per connection, so a request line starts a read and the
                // first bytes back are its answer.
                if (request && IsBlobUploadClose(buffer.AsSpan(0, n)))
                {
                    pending.Value = true;
                    Interlocked.Increment(ref _uploads);
                    int now = Interlocked.Increment(ref _inFlight);
                    int max;
                    while (now > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max) { }
                    if (now >= _hold) _released.TrySetResult();
                    await HoldAsync(cancel);
                }
                else if (!request && pending.Value)
                {
                    pending.Value = false;
                    Interlocked.Decrement(ref _inFlight);
                }
                await to.WriteAsync(buffer.AsMemory(0, n), cancel);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The other direction ended first.
        }
    }

    private async Task HoldAsync(CancellationToken cancel)
    {
        try
        {
            await _released.Task.WaitAsync(_bound, cancel);
        }
        catch (TimeoutException)
        {
            HoldTimedOut = true;
            _released.TrySetResult();
        }
    }

    /// <summary>Whether the bytes start a <c>PUT /v2/…/blobs/uploads/…?…digest=…</c> request (the end of a blob upload).</summary>
    private static bool IsBlobUploadClose(ReadOnlySpan<byte> bytes)
    {
        int end = bytes.IndexOf("\r\n"u8);
        if (end < 0) return false;
        string line = Encoding.ASCII.GetString(bytes[..end]);
        return line.StartsWith("PUT /v2/", StringComparison.Ordinal) && line.Contains("/blobs/uploads/", StringComparison.Ordinal)
            && line.Contains("digest=", StringComparison.Ordinal);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }
}
