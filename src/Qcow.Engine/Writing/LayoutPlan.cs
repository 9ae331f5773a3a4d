namespace Qcow.Engine.Writing;

/// <summary>
/// What a <see cref="QcowWriter"/> will store, known before it starts: enough to place the L1 and refcount tables,
/// and so to write the header first.
/// </summary>
/// <param name="DataClusters">Guest clusters stored as data (compressed ones included).</param>
/// <param name="ZeroClusters">Guest clusters stored as zero clusters.</param>
/// <param name="L2Tables">L2 tables: the L2 ranges that hold at least one data or zero cluster.</param>
/// <param name="DataEnd">
/// The host offset where the data clusters and L2 tables end (cluster-aligned), where the L1 table will start.
/// Compressed streams are packed byte by byte, so this is not a function of the counts alone.
/// </param>
internal sealed record LayoutPlan(long DataClusters, long ZeroClusters, long L2Tables, long DataEnd);
