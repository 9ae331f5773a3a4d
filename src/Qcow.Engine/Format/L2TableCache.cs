using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>
/// A bounded cache of L2 tables, shared by the views of one image and safe for parallel readers. When full it is
/// emptied: reads walk guest order, so the recently used tables are read again at once and the bound holds.
/// </summary>
internal sealed class L2TableCache
{
    private readonly Dictionary<ulong, ulong[]> _tables = new();
    private readonly Lock _lock = new();
    private readonly int _capacity;

    public L2TableCache(int tableBytes, long budgetBytes = 16L << 20)
    {
        _capacity = (int)Math.Max(4, budgetBytes / tableBytes);
    }

    /// <summary>Returns the table at <paramref name="offset"/> as raw big-endian-decoded words.</summary>
    public ulong[] Get(ImageFile file, ulong offset, int clusterSize, Func<ulong[], ulong[]>? validate = null)
    {
        lock (_lock)
        {
            if (_tables.TryGetValue(offset, out var t)) return t;
        }
        var bytes = new byte[clusterSize];
        file.ReadExactly((long)offset, bytes, $"L2 table at 0x{offset:x}");
        var words = new ulong[clusterSize / 8];
        for (int i = 0; i < words.Length; i++) words[i] = BigEndian.U64(bytes, i * 8);
        if (validate is not null) words = validate(words);
        lock (_lock)
        {
            if (_tables.Count >= _capacity) _tables.Clear();
            _tables[offset] = words;
        }
        return words;
    }
}
