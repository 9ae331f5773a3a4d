namespace Qcow.Engine.Writing;

/// <summary>
/// Follows where a <see cref="QcowWriter"/> places what it stores, without storing anything, so the end of the data
/// (and with it the header) is known before the first byte is written: the first pass of a planned write feeds it
/// the same clusters, in the same order, that the second pass gives the writer. The writer checks the result when it
/// places its tables.
/// </summary>
/// <remarks>
/// The rules are the writer's: cluster 0 is the header; an uncompressed (or, in version 2, zero) cluster starts on a
/// cluster boundary; a compressed stream follows the previous byte; an L2 table is written, cluster-aligned, when the
/// guest clusters move past its range, and the last one at the end.
/// </remarks>
internal sealed class HostLayout
{
    private readonly int _clusterSize;
    private readonly int _l2Entries;
    private readonly bool _zerosAsData;
    private long _pos;
    private long _currentL2 = -1;

    public HostLayout(WriteOptions options)
    {
        _clusterSize = options.ClusterSize;
        _l2Entries = options.ClusterSize / 8;
        _zerosAsData = options.Version < 3;
        _pos = _clusterSize;
    }

    /// <summary>L2 tables the clusters so far need.</summary>
    public long L2Tables { get; private set; }

    /// <summary>An uncompressed cluster at <paramref name="guestCluster"/>.</summary>
    public void Data(long guestCluster)
    {
        Table(guestCluster);
        _pos = Align(_pos) + _clusterSize;
    }

    /// <summary>A compressed stream of <paramref name="length"/> bytes at <paramref name="guestCluster"/>.</summary>
    public void Compressed(long guestCluster, int length)
    {
        Table(guestCluster);
        _pos += length;
    }

    /// <summary>A zero cluster at <paramref name="guestCluster"/> (version 2 stores it as data).</summary>
    public void Zero(long guestCluster)
    {
        if (_zerosAsData) { Data(guestCluster); return; }
        Table(guestCluster);
    }

    /// <summary>Where the data and L2 tables end: the last L2 table written, aligned to a cluster.</summary>
    public long DataEnd => Align(_currentL2 >= 0 ? Align(_pos) + _clusterSize : _pos);

    private void Table(long guestCluster)
    {
        long l2 = guestCluster / _l2Entries;
        if (l2 == _currentL2) return;
        if (_currentL2 >= 0) _pos = Align(_pos) + _clusterSize;
        _currentL2 = l2;
        L2Tables++;
    }

    private long Align(long pos) => (pos + _clusterSize - 1) & ~((long)_clusterSize - 1);
}
