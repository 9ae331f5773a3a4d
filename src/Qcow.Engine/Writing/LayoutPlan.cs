namespace Qcow.Engine.Writing;

/// <summary>
/// How many clusters a <see cref="QcowWriter"/> will store, known before it starts: enough to place the L1 and
/// refcount tables, and so to write the header first.
/// </summary>
/// <param name="DataClusters">Guest clusters stored as data.</param>
/// <param name="ZeroClusters">Guest clusters stored as zero clusters.</param>
/// <param name="L2Tables">L2 tables: the L2 ranges that hold at least one data or zero cluster.</param>
public sealed record LayoutPlan(long DataClusters, long ZeroClusters, long L2Tables);
