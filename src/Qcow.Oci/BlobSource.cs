using System.Net;

namespace Qcow.Oci;

/// <summary>The bytes behind a descriptor being pushed: a file, or bytes in memory (chain.json, the empty config).</summary>
internal sealed record BlobSource(Descriptor Descriptor, string? Path, ReadOnlyMemory<byte> Bytes)
{
    /// <summary>The file name progress and errors show.</summary>
    public string Name => Descriptor.Title ?? Descriptor.Digest;

    /// <summary>A fresh request body for bytes [offset, offset+length), reporting bytes sent.</summary>
    public HttpContent Content(long offset, long length, Action<long>? sent) => new RangeContent(this, offset, length, sent);

    private sealed class RangeContent(BlobSource blob, long offset, long length, Action<long>? sent) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            await SerializeToStreamAsync(stream, context, CancellationToken.None).ConfigureAwait(false);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancel)
        {
            if (blob.Path is null)
            {
                await stream.WriteAsync(blob.Bytes.Slice((int)offset, (int)length), cancel).ConfigureAwait(false);
                sent?.Invoke(length);
                return;
            }
            using var file = File.OpenHandle(blob.Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
            byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                long done = 0;
                while (done < length)
                {
                    int want = (int)Math.Min(1 << 20, length - done);
                    int n = await RandomAccess.ReadAsync(file, buffer.AsMemory(0, want), offset + done, cancel).ConfigureAwait(false);
                    // The file shrank after it was hashed: the registry would reject the digest anyway; say why.
                    if (n == 0) throw new RegistryException(blob.Path, "the file changed while it was being uploaded");
                    await stream.WriteAsync(buffer.AsMemory(0, n), cancel).ConfigureAwait(false);
                    done += n;
                    sent?.Invoke(done);
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        protected override bool TryComputeLength(out long size)
        {
            size = length;
            return true;
        }
    }
}
