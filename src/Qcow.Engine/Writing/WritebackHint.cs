using Microsoft.Win32.SafeHandles;
using Qcow.Engine.IO;

namespace Qcow.Engine.Writing;

/// <summary>
/// Starts the writeback of what an output has written, every 32 MiB (Linux sync_file_range, which does not wait for
/// the device), so the final flush waits only for the tail. Only a hint: where the call is unavailable nothing happens,
/// and the flush still makes everything durable.
/// </summary>
internal sealed class WritebackHint(SafeFileHandle handle)
{
    private const long Step = 32L << 20;
    private readonly Lock _lock = new();
    private bool _unavailable = !HostPlatform.LinuxCalls;
    private long _from;

    /// <summary>The output wrote <paramref name="length"/> bytes at <paramref name="offset"/>, in output order.</summary>
    public void Wrote(long offset, int length)
    {
        long end = offset + length;
        // Two direct-I/O writer threads that fell back to the page cache both get here: the range is theirs in turn.
        lock (_lock)
        {
            if (_unavailable || end - _from < Step) return;
            if (!OutputCalls.TryStartWriteback(handle, _from, end - _from)) _unavailable = true;
            _from = end;
        }
    }
}
