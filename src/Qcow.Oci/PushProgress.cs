using Qcow.Engine.Operations;

namespace Qcow.Oci;

/// <summary>
/// One progress line for a push whose blobs upload concurrently: bytes sent over all blobs against their total size
/// (a blob the registry has, or mounts, counts as sent), under one stage, so a console line or a build log stays
/// readable however many uploads are in flight. Reports are serialised: the callback is never called concurrently.
/// </summary>
internal sealed class PushProgress(Action<ProgressInfo>? report, IReadOnlyList<BlobSource> blobs, string stage)
{
    private readonly long[] _sent = new long[blobs.Count];
    private readonly long _total = blobs.Sum(b => b.Descriptor.Size);
    private readonly Lock _gate = new();
    private long _done;

    /// <summary>The sink for blob <paramref name="index"/>'s bytes sent so far (an upload that restarts goes back).</summary>
    public Action<long>? For(int index) => report is null ? null : n => Set(index, n);

    /// <summary>Blob <paramref name="index"/> is in the registry, however it got there.</summary>
    public void Finished(int index)
    {
        if (report is not null) Set(index, blobs[index].Descriptor.Size);
    }

    private void Set(int index, long sent)
    {
        lock (_gate)
        {
            _done += sent - _sent[index];
            _sent[index] = sent;
            report!(new ProgressInfo(_done, _total, stage));
        }
    }
}
