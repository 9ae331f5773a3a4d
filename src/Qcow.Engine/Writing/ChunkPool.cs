using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Qcow.Engine.Writing;

/// <summary>
/// The native, 4096-aligned chunks (<see cref="SequentialOutput.ChunkSize"/> bytes) of the outputs of one run: kept
/// for reuse while the run lasts and freed when it ends, so nothing stays allocated between runs (a reused MSBuild
/// node runs many). It also counts the outputs' background threads, so its owner can tell none outlived the run.
/// </summary>
internal sealed unsafe class ChunkPool : IDisposable
{
    /// <summary>Alignment of every chunk: what O_DIRECT needs.</summary>
    public const int Alignment = 4096;

    private readonly ConcurrentBag<IntPtr> _free = new();
    private int _allocated;
    private int _outstanding;
    private int _threads;
    private bool _disposed;

    /// <summary>Chunks handed out and not yet returned.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Chunks allocated and not yet freed.</summary>
    public int Allocated => Volatile.Read(ref _allocated);

    /// <summary>Background threads of outputs using this pool that are still running.</summary>
    public int ThreadsRunning => Volatile.Read(ref _threads);

    /// <summary>A chunk, reused when one is free.</summary>
    public IntPtr Rent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Interlocked.Increment(ref _outstanding);
        if (_free.TryTake(out var p)) return p;
        Interlocked.Increment(ref _allocated);
        return (IntPtr)NativeMemory.AlignedAlloc(SequentialOutput.ChunkSize, Alignment);
    }

    /// <summary>Gives a chunk back for reuse.</summary>
    public void Return(IntPtr chunk)
    {
        _free.Add(chunk);
        Interlocked.Decrement(ref _outstanding);
    }

    /// <summary>Marks a background thread as started; <see cref="ThreadEnded"/> when it ends.</summary>
    public void ThreadStarted() => Interlocked.Increment(ref _threads);

    /// <summary>Marks a background thread as ended.</summary>
    public void ThreadEnded() => Interlocked.Decrement(ref _threads);

    /// <summary>Frees the chunks given back. Chunks still out (a bug) are left alone rather than freed under their user.</summary>
    public void Dispose()
    {
        _disposed = true;
        while (_free.TryTake(out var p))
        {
            NativeMemory.AlignedFree((void*)p);
            Interlocked.Decrement(ref _allocated);
        }
    }
}
