namespace Qcow.Engine;

/// <summary>
/// A warning about an input: what is wrong with <see cref="File"/>, which is still read (as qemu reads it). The CLI
/// prints it as <c>FILE: message</c>; the MSBuild tasks log it against the file.
/// </summary>
/// <param name="File">The image the warning is about.</param>
/// <param name="Message">What is wrong, and what is done about it.</param>
public sealed record QcowWarning(string File, string Message)
{
    /// <summary><c>FILE: message</c>.</summary>
    public override string ToString() => $"{File}: {Message}";
}
