using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Qcow.Engine.IO;
using Qcow.Engine.Pipeline;

namespace Qcow.Engine.Writing;

/// <summary>
/// Writes an output front to back in 4 MiB chunks, handed to background threads: one hashes them in order (when a
/// SHA-256 is wanted), another writes them (through the page cache, starting writeback as it goes), so producing the
/// image, hashing it and the disk taking it overlap. The caller's thread only blocks when all of its chunks are in
/// flight. Optionally (Linux, where the file system allows it) chunks go to the disk directly (O_DIRECT) from two
/// writer threads: no copy into the page cache, steadier but, on the machines measured, slower overall.
/// </summary>
/// <remarks>
/// The threads are dedicated (they block on the disk for the whole output) and catch everything: a failure is kept
/// and handed to the owner's thread, which throws it from its next call, so nothing escapes a background thread (an
/// MSBuild node must never die of one). Chunks come from a <see cref="ChunkPool"/>, the run's or the output's own.
/// </remarks>
/// <remarks>
/// Without hashing, the first chunk is held back until <see cref="Complete"/> so the header can be patched in last
/// (<see cref="PatchHead"/>); with hashing, every byte must be final when written, so nothing may be patched. The
/// same holds for a <see cref="Stream"/> sink (a pipe, an upload), which takes the chunks in order, once.
/// </remarks>
internal sealed unsafe class SequentialOutput : IDisposable
{
    /// <summary>The chunk size: a multiple of every cluster size, so a cluster never straddles two chunks.</summary>
    public const int ChunkSize = 4 << 20;
    private const int ChunksPerOutput = 8;
    private const int WriterThreads = 2;
    private const int DirectAlignment = ChunkPool.Alignment;
    // Measured on the bench chain (ext4 on a virtio disk): 64 KiB writes into the page cache cost about half the
    // kernel time of 1 MiB ones, and a third of 4 MiB ones.
    private const int BufferedWrite = 64 << 10;

    private readonly SafeFileHandle _handle;
    private readonly Stream? _sink;
    private readonly string _target;
    // Each output takes at most ChunksPerOutput chunks of the pool at a time, so outputs written at once never wait
    // on each other's buffers.
    private readonly ChunkPool _pool;
    private readonly bool _ownsPool;
    private readonly SemaphoreSlim _slots = new(ChunksPerOutput);
    private readonly BlockingCollection<Chunk> _toHash = new();
    private readonly BlockingCollection<Chunk> _toWrite = new();
    private readonly IncrementalHash? _hash;
    private readonly Thread? _hasher;
    private readonly Thread[] _writers;
    private volatile bool _direct;
    private Exception? _error;
    private IntPtr _cur;
    private long _curOffset;
    private int _curLength;
    private IntPtr _head;
    private long _length;
    private bool _finished;

    // Clones: ranges of the chunk that hold a source's bytes unchanged, cloned from it rather than written.
    private readonly record struct Chunk(IntPtr Buffer, long Offset, int Length, CloneRange[]? Clones = null);

    private readonly OutputClones _clones = new();
    private CloneRange[]? _headClones;
    private readonly WritebackHint _writeback;

    /// <summary>Writes to <paramref name="sink"/> front to back, never seeking; it is flushed by <see cref="Complete"/>, not closed.</summary>
    public SequentialOutput(Stream sink, string target, bool sha256, ChunkPool? pool = null)
        : this(new SafeFileHandle(), target, sha256, directIo: false, sink, pool)
    {
    }

    /// <summary>
    /// Starts writing at offset 0 of <paramref name="handle"/> (<paramref name="target"/> names it in errors), with
    /// chunks from <paramref name="pool"/> (or a pool of its own, freed with it).
    /// </summary>
    public SequentialOutput(SafeFileHandle handle, string target, bool sha256, bool directIo, ChunkPool? pool = null)
        : this(handle, target, sha256, directIo, null, pool)
    {
    }

    private SequentialOutput(SafeFileHandle handle, string target, bool sha256, bool directIo, Stream? sink, ChunkPool? pool)
    {
        _ownsPool = pool is null;
        _pool = pool ?? new ChunkPool();
        _handle = handle;
        _sink = sink;
        _target = target;
        _direct = directIo && HostPlatform.LinuxCalls && OutputCalls.TrySetDirect(handle, true);
        _writeback = new WritebackHint(handle);
        if (sha256)
        {
            _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            _hasher = new Thread(HashLoop) { IsBackground = true, Name = "qcow hash" };
            _pool.ThreadStarted();
            _hasher.Start();
        }
        // Through the page cache one writer keeps the writes in order (two would contend for the file's lock), and
        // writeback is started every 32 MiB, so the final flush only waits for the tail.
        _writers = new Thread[_direct ? WriterThreads : 1];
        for (int i = 0; i < _writers.Length; i++)
        {
            _writers[i] = new Thread(WriteLoop) { IsBackground = true, Name = "qcow write" };
            _pool.ThreadStarted();
            _writers[i].Start();
        }
        _cur = Rent();
    }

    /// <summary>Whether direct I/O is in use (for tests and diagnostics).</summary>
    public bool DirectIo => _direct;

    /// <summary>Bytes written so far: the offset of the next byte.</summary>
    public long Position => _curOffset + _curLength;

    /// <summary>Appends <paramref name="data"/>.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = Math.Min(data.Length, ChunkSize - _curLength);
            data[..n].CopyTo(new Span<byte>((byte*)_cur + _curLength, n));
            _curLength += n;
            data = data[n..];
            if (_curLength == ChunkSize) Submit();
        }
    }

    /// <summary>Appends <paramref name="count"/> zero bytes.</summary>
    public void WriteZeros(int count)
    {
        while (count > 0)
        {
            int n = Math.Min(count, ChunkSize - _curLength);
            new Span<byte>((byte*)_cur + _curLength, n).Clear();
            _curLength += n;
            count -= n;
            if (_curLength == ChunkSize) Submit();
        }
    }

    /// <summary>
    /// The next bytes of the output, at most <paramref name="maxLength"/> and at least one byte (up to the end of the
    /// current chunk), to be filled in place (for instance by a read from a source image) and then made part of the
    /// output with <see cref="Advance"/>. At a cluster-aligned position this is at least one whole cluster, since the
    /// chunk size is a multiple of every cluster size.
    /// </summary>
    public Span<byte> GetSpanUpTo(int maxLength) =>
        new((byte*)_cur + _curLength, Math.Min(maxLength, ChunkSize - _curLength));

    private bool MayClone => _sink is null && !_direct && !_clones.Off && HostPlatform.LinuxCalls;

    /// <summary>
    /// True while <see cref="CloneFrom"/> with mayLeaveUnfilled would take a range unfilled (cloning is on and nothing
    /// hashes): a writer then need not read the bytes of clusters it can clone.
    /// </summary>
    public bool MayLeaveUnfilled => MayClone && _hash is null;

    /// <summary>
    /// Says that the <paramref name="length"/> bytes at <paramref name="offsetInSpan"/> of the span
    /// <see cref="GetSpanUpTo"/> gave, still to be filled with them, are <paramref name="source"/>'s bytes at
    /// <paramref name="sourceOffset"/>: where the file system shares extents (<see cref="ExtentClone"/>) they are cloned
    /// from it instead of written. Offsets and length are multiples of <paramref name="alignment"/>. Ignored for a
    /// stream and with direct I/O. With <paramref name="mayLeaveUnfilled"/>, returns true when the range is recorded and
    /// nothing reads the buffer's bytes (no hash): the caller may then leave them unfilled, and they are read from the
    /// source only if the clone is refused.
    /// </summary>
    public bool CloneFrom(int offsetInSpan, SafeFileHandle source, long sourceOffset, int length, int alignment,
        bool mayLeaveUnfilled = false)
    {
        if (!MayClone) return false;
        bool unfilled = mayLeaveUnfilled && _hash is null;
        _clones.Add(source, sourceOffset, Position + offsetInSpan, length, alignment, unfilled);
        return unfilled;
    }

    /// <summary>Takes the <paramref name="length"/> bytes filled through <see cref="GetSpanUpTo"/>.</summary>
    public void Advance(int length)
    {
        _curLength += length;
        if (_curLength == ChunkSize) Submit();
    }

    /// <summary>Overwrites the start of the output (the header, written last). Not allowed when hashing or streaming.</summary>
    public void PatchHead(ReadOnlySpan<byte> data)
    {
        if (!MayPatch) throw new InvalidOperationException("a hashed or streamed output is written front to back");
        IntPtr head = _head != IntPtr.Zero ? _head : _cur;
        if (data.Length > ChunkSize || (head == _cur && data.Length > _curLength))
            throw new InvalidOperationException("the head patch must lie within the bytes already written");
        data.CopyTo(new Span<byte>((void*)head, data.Length));
    }

    /// <summary>
    /// Writes what is left, waits for the hash and the writes, and sets the file's exact length. Returns the SHA-256
    /// (hex) when hashing. Write errors surface here (or earlier) as a <see cref="QcowException"/> naming the target.
    /// </summary>
    public string? Complete()
    {
        _finished = true;
        ThrowIfFailed();
        _length = Position;
        if (_curLength > 0 || _cur == _head)
        {
            EnqueueLast(new Chunk(_cur, _curOffset, _curLength, _clones.Take()));
        }
        else
        {
            Return(_cur);
        }
        _cur = IntPtr.Zero;
        StopThreads();
        if (_head != IntPtr.Zero)
        {
            // Only reached without hashing: the held-back first chunk now carries the final header.
            int n = (int)Math.Min(ChunkSize, _length);
            try { WriteChunk(new Chunk(_head, 0, n, _headClones)); }
            catch (Exception e) { Fail(e); }
            Return(_head);
            _head = IntPtr.Zero;
        }
        ThrowIfFailed();
        // Whoever reads the file through this handle next (a hash read back) must not need aligned buffers.
        if (_direct) OutputCalls.TrySetDirect(_handle, false);
        try
        {
            if (_sink is not null) _sink.Flush();
            else RandomAccess.SetLength(_handle, _length);
        }
        catch (IOException e)
        {
            throw Failure(e);
        }
        return _hash is null ? null : Convert.ToHexStringLower(_hash.GetHashAndReset());
    }

    /// <summary>Stops the background threads and gives back the buffers; the file is left as it is (the caller deletes it).</summary>
    public void Dispose()
    {
        if (!_finished) Fail(new OperationCanceledException());
        _finished = true;
        StopThreads();
        if (_cur != IntPtr.Zero) { Return(_cur); _cur = IntPtr.Zero; }
        if (_head != IntPtr.Zero) { Return(_head); _head = IntPtr.Zero; }
        _hash?.Dispose();
        _slots.Dispose();
        if (_ownsPool) _pool.Dispose();
    }

    private void Submit()
    {
        ThrowIfFailed();
        var chunk = new Chunk(_cur, _curOffset, _curLength, _clones.Take());
        if (_curOffset == 0 && MayPatch)
        {
            _head = _cur; // kept for PatchHead; written by Complete
            _headClones = chunk.Clones;
        }
        else
        {
            Enqueue(chunk);
        }
        _curOffset += _curLength;
        _curLength = 0;
        _cur = Rent();
    }

    private void EnqueueLast(Chunk chunk)
    {
        if (chunk.Offset == 0 && MayPatch)
        {
            _head = chunk.Buffer;
            _headClones = chunk.Clones;
            return;
        }
        Enqueue(chunk);
    }

    /// <summary>Whether the head is held back for <see cref="PatchHead"/>: not when every byte must go out final, in order.</summary>
    private bool MayPatch => _hash is null && _sink is null;

    private void Enqueue(Chunk chunk)
    {
        if (_hash is not null) _toHash.Add(chunk); else _toWrite.Add(chunk);
    }

    private void StopThreads()
    {
        if (!_toHash.IsAddingCompleted) _toHash.CompleteAdding();
        _hasher?.Join();
        if (!_toWrite.IsAddingCompleted) _toWrite.CompleteAdding();
        foreach (var t in _writers) t.Join();
    }

    private void HashLoop()
    {
        try
        {
            bool first = true;
            foreach (var chunk in _toHash.GetConsumingEnumerable())
            {
                try
                {
                    if (first) PipelineHooks.Step("hashing:" + Path.GetFileName(_target));
                    first = false;
                    if (Volatile.Read(ref _error) is null) _hash!.AppendData(new ReadOnlySpan<byte>((void*)chunk.Buffer, chunk.Length));
                }
                catch (Exception e)
                {
                    Fail(e);
                }
                // Passed on even after a failure: the writer thread gives the chunk back.
                _toWrite.Add(chunk);
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            _toWrite.CompleteAdding();
            _pool.ThreadEnded();
        }
    }

    private void WriteLoop()
    {
        try
        {
            foreach (var chunk in _toWrite.GetConsumingEnumerable())
            {
                try
                {
                    if (Volatile.Read(ref _error) is null) WriteChunk(chunk);
                }
                catch (Exception e)
                {
                    Fail(e);
                }
                finally
                {
                    Return(chunk.Buffer);
                }
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
        finally
        {
            _pool.ThreadEnded();
        }
    }

    /// <summary>Keeps the first failure, for the owner's thread to throw.</summary>
    private void Fail(Exception e) => Interlocked.CompareExchange(ref _error, e, null);

    private void WriteChunk(Chunk chunk)
    {
        if (_sink is not null)
        {
            // Whatever the caller's stream throws (a pipe its reader closed, a failed upload) ends the output; its
            // cancellation too, which must not pass for this output's own (see ThrowIfFailed).
            try { _sink.Write(new ReadOnlySpan<byte>((void*)chunk.Buffer, chunk.Length)); }
            catch (Exception e) { Fail(e is OperationCanceledException ? new IOException(e.Message, e) : e); }
            return;
        }
        // Whatever else fails here is kept by the calling loop (see Fail).
        if (_direct)
        {
            // Direct I/O wants whole blocks: the last chunk is padded, and the length set exactly afterwards.
            int padded = (chunk.Length + DirectAlignment - 1) & ~(DirectAlignment - 1);
            new Span<byte>((byte*)chunk.Buffer + chunk.Length, padded - chunk.Length).Clear();
            try
            {
                RandomAccess.Write(_handle, new ReadOnlySpan<byte>((void*)chunk.Buffer, padded), chunk.Offset);
                return;
            }
            catch (IOException)
            {
                // Some file systems take the flag but refuse the I/O: go on through the page cache.
                _direct = false;
                OutputCalls.TrySetDirect(_handle, false);
            }
        }
        var bytes = new Span<byte>((void*)chunk.Buffer, chunk.Length);
        // With cloning off, still through Apply: ranges recorded before it went off may be unfilled.
        if (chunk.Clones is { } clones)
            _clones.Write(_handle, chunk.Offset, bytes, clones, WriteBuffered);
        else
            WriteBuffered(chunk.Offset, bytes);
        _writeback.Wrote(chunk.Offset, chunk.Length);
    }

    private void WriteBuffered(long offset, ReadOnlySpan<byte> bytes)
    {
        for (int done = 0; done < bytes.Length; done += BufferedWrite)
        {
            int n = Math.Min(BufferedWrite, bytes.Length - done);
            RandomAccess.Write(_handle, bytes.Slice(done, n), offset + done);
        }
    }

    private void ThrowIfFailed()
    {
        if (Volatile.Read(ref _error) is { } e && e is not OperationCanceledException) throw Failure(e);
    }

    private QcowException Failure(Exception e) => new(_target, $"cannot write output: {e.Message}", e);

    private IntPtr Rent()
    {
        _slots.Wait();
        return _pool.Rent();
    }

    private void Return(IntPtr chunk)
    {
        _pool.Return(chunk);
        _slots.Release();
    }

}
