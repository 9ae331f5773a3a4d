namespace Qcow.Engine.IO;

/// <summary>
/// The one switch over the engine's Linux-only system calls: lseek SEEK_DATA/SEEK_HOLE (holes in <c>map</c>), fstat
/// st_blocks (actual size in <c>info</c>), /proc/self/fd (the backing file policy checked again on the opened file),
/// O_DIRECT and sync_file_range (output writes), FICLONERANGE and copy_file_range (<see cref="ExtentClone"/>). Each has a fallback, which is what runs on other systems; with the
/// switch off they all take it on Linux too, so tests can show the output bytes do not depend on them.
/// </summary>
internal static class HostPlatform
{
    // Flows with the caller (into the threads and tasks it starts), so a test that turns the calls off does not turn
    // them off for other tests running at the same time. Never read from the environment: it is not a user setting.
    private static readonly AsyncLocal<bool> s_off = new();

    /// <summary>Whether the Linux-only calls may be used here: on Linux, unless turned off for this flow.</summary>
    public static bool LinuxCalls => OperatingSystem.IsLinux() && !s_off.Value;

    /// <summary>Turns every Linux-only call off for the calling flow until the result is disposed.</summary>
    public static IDisposable WithoutLinuxCalls()
    {
        bool before = s_off.Value;
        s_off.Value = true;
        return new Restore(before);
    }

    private sealed class Restore(bool before) : IDisposable
    {
        public void Dispose() => s_off.Value = before;
    }
}
