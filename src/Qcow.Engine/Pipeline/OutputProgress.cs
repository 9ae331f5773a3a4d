using Qcow.Engine.Operations;

namespace Qcow.Engine.Pipeline;

/// <summary>
/// The progress of a run's outputs as one stream, output after output in output order (the order in which they
/// appear, complete): an output's comparison, its writing and its commit (the end of its hash, the flush, the rename)
/// each make up a third of its virtual size, so its figure only rises and reaches the whole size exactly when the
/// output is in place. The stages of different outputs overlap (the next is compared while one is written): what a
/// later output reports is held back until the ones before it are complete, then shown.
/// </summary>
internal sealed class OutputProgress(Action<ProgressInfo> sink, IReadOnlyList<(string Name, long Size)> outputs)
{
    private readonly Lock _lock = new();
    private readonly long[] _compared = new long[outputs.Count];
    private readonly long[] _written = new long[outputs.Count];
    private readonly bool[] _committed = new bool[outputs.Count];
    private long _reported = -1;
    private int _current;

    /// <summary>Hears how far output <paramref name="index"/>'s comparison has come (guest bytes).</summary>
    public Action<ProgressInfo> Comparing(int index) => p => Update(_compared, index, p.Done);

    /// <summary>Hears how far output <paramref name="index"/>'s writing has come (guest bytes).</summary>
    public Action<ProgressInfo> Writing(int index) => p => Update(_written, index, p.Done);

    /// <summary>Hears a one-pass write, which compares and writes at once.</summary>
    public Action<ProgressInfo> ComparingAndWriting(int index) => p =>
    {
        Update(_compared, index, p.Done);
        Update(_written, index, p.Done);
    };

    /// <summary>Output <paramref name="index"/> is in place (or kept from an earlier run).</summary>
    public void Committed(int index)
    {
        lock (_lock)
        {
            _committed[index] = true;
            Report();
        }
    }

    private void Update(long[] stage, int index, long done)
    {
        lock (_lock)
        {
            stage[index] = Math.Max(stage[index], Math.Min(done, outputs[index].Size));
            Report();
        }
    }

    // Reports the current output when its figure rose, and moves on past the ones complete. Under the lock, so the
    // sink hears one output at a time, in order.
    private void Report()
    {
        while (_current < outputs.Count)
        {
            var (name, size) = outputs[_current];
            long done = _committed[_current] ? size : Math.Min(size - 1, (_compared[_current] + _written[_current]) / 3);
            if (done > _reported)
            {
                _reported = done;
                sink(new ProgressInfo(Math.Max(done, 0), size, name));
            }
            if (!_committed[_current]) return;
            _current++;
            _reported = -1;
        }
    }
}
