namespace Qcow.Engine.Operations;

/// <summary>What <c>qcow check</c> should check.</summary>
public sealed record CheckRequest
{
    /// <summary>The qcow2 image (its backing file is not opened, as qemu-img check).</summary>
    public required string Image { get; init; }
    /// <summary>Hears warnings about the image (e.g. its corrupt bit), one line each.</summary>
    public Action<QcowWarning>? Warning { get; init; }
}
