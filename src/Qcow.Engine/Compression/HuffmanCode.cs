namespace Qcow.Engine.Compression;

/// <summary>
/// Length-limited canonical Huffman codes for deflate (RFC 1951, 3.2.2). Lengths come from package-merge, which gives
/// optimal codes within the limit; ties are broken by symbol number, so the same frequencies always give the same code.
/// </summary>
internal sealed class HuffmanCode
{
    // Package-merge nodes: a leaf (symbol >= 0) or a package of two earlier nodes.
    private readonly long[] _weight;
    private readonly int[] _left;
    private readonly int[] _right;
    private readonly int[] _symbol;
    private readonly int[] _leaves;
    private int[] _list;
    private int[] _next;

    public HuffmanCode(int maxSymbols, int maxBits)
    {
        int nodes = 2 * maxSymbols * (maxBits + 1);
        _weight = new long[nodes];
        _left = new int[nodes];
        _right = new int[nodes];
        _symbol = new int[nodes];
        _leaves = new int[maxSymbols];
        _list = new int[2 * maxSymbols];
        _next = new int[2 * maxSymbols];
    }

    /// <summary>
    /// Code lengths (at most <paramref name="maxBits"/>) for <paramref name="freq"/>. At least two symbols always get
    /// a code (adding symbol 0 or 1 when fewer are used), so every code is complete, which every inflater accepts.
    /// </summary>
    public void BuildLengths(ReadOnlySpan<int> freq, int maxBits, Span<byte> lengths)
    {
        lengths.Clear();
        int n = 0;
        for (int s = 0; s < freq.Length; s++)
            if (freq[s] > 0) _leaves[n++] = s;
        if (n < 2)
        {
            int used = n == 1 ? _leaves[0] : 0;
            lengths[used] = 1;
            lengths[used == 0 ? 1 : 0] = 1;
            return;
        }
        var leaves = _leaves.AsSpan(0, n);
        // Sort by weight, then by symbol: insertion sort is fine for at most 286 symbols, and it is stable.
        for (int i = 1; i < n; i++)
        {
            int s = leaves[i], j = i - 1;
            while (j >= 0 && freq[leaves[j]] > freq[s]) { leaves[j + 1] = leaves[j]; j--; }
            leaves[j + 1] = s;
        }
        int count = 0;
        for (int i = 0; i < n; i++) NewNode(ref count, freq[leaves[i]], -1, -1, leaves[i]);
        // Level maxBits holds the leaves alone; each level above merges the leaves with the packages of the one below.
        var list = _list;
        int listLength = n;
        for (int i = 0; i < n; i++) list[i] = i;
        for (int level = maxBits; level > 1; level--)
        {
            int packages = listLength / 2, li = 0, pi = 0, m = 0;
            var next = _next;
            while (li < n || pi < packages)
            {
                long pw = pi < packages ? _weight[list[2 * pi]] + _weight[list[2 * pi + 1]] : long.MaxValue;
                if (li < n && _weight[li] <= pw) next[m++] = li++;
                else
                {
                    next[m++] = NewNode(ref count, pw, list[2 * pi], list[2 * pi + 1], -1);
                    pi++;
                }
            }
            (_list, _next) = (next, list);
            list = next;
            listLength = m;
        }
        // The first 2n-2 items at the top level: a symbol's code length is how often its leaf occurs among them.
        for (int i = 0; i < 2 * n - 2; i++) Count(list[i], lengths);
    }

    /// <summary>Canonical codes for <paramref name="lengths"/>, bit-reversed for deflate's LSB-first stream.</summary>
    public static void AssignCodes(ReadOnlySpan<byte> lengths, Span<ushort> codes)
    {
        Span<int> perLength = stackalloc int[16];
        Span<int> next = stackalloc int[16];
        foreach (byte l in lengths) perLength[l]++;
        perLength[0] = 0;
        int code = 0;
        for (int bits = 1; bits < 16; bits++)
        {
            code = (code + perLength[bits - 1]) << 1;
            next[bits] = code;
        }
        for (int s = 0; s < lengths.Length; s++)
        {
            int len = lengths[s];
            codes[s] = len == 0 ? (ushort)0 : Reverse(next[len]++, len);
        }
    }

    private static ushort Reverse(int code, int bits)
    {
        int r = 0;
        for (int i = 0; i < bits; i++) { r = (r << 1) | (code & 1); code >>= 1; }
        return (ushort)r;
    }

    private int NewNode(ref int count, long weight, int left, int right, int symbol)
    {
        _weight[count] = weight;
        _left[count] = left;
        _right[count] = right;
        _symbol[count] = symbol;
        return count++;
    }

    private void Count(int node, Span<byte> lengths)
    {
        while (_symbol[node] < 0)
        {
            Count(_left[node], lengths);
            node = _right[node];
        }
        lengths[_symbol[node]]++;
    }
}
