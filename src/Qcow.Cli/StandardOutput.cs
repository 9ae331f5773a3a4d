using Microsoft.Win32.SafeHandles;
using Qcow.Engine;

namespace Qcow.Cli;

/// <summary>Standard output as the output of a command (the <c>-</c> argument): binary, unbuffered, never a terminal.</summary>
internal static class StandardOutput
{
    /// <summary>How errors name it.</summary>
    public const string Name = "standard output";

    /// <summary>
    /// Opens standard output for writing an image. Refuses a terminal, as zstd does: an image is not for reading.
    /// On Unix the descriptor is used directly, so a reader that goes away is an error (EPIPE) rather than the silent
    /// success the console stream makes of it.
    /// </summary>
    public static Stream Open()
    {
        if (!Console.IsOutputRedirected)
            throw new QcowException(Name, "is a terminal; send the image to a pipe or a file (qcow convert SOURCE - | zstd > image.qcow2.zst)");
        if (OperatingSystem.IsWindows()) return Console.OpenStandardOutput();
        return new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
    }
}
