namespace Qcow.Build.Tasks;

/// <summary>The diagnostic codes of Qcow.Build.Sdk. Every error and warning names the file it is about.</summary>
public static class Codes
{
    /// <summary>A source image (QcowChain or QcowSnapshot item, or a diff base image) does not exist.</summary>
    public const string SourceNotFound = "QCOW0001";
    /// <summary>The engine cannot read a chain: bad image, missing or disallowed backing file, unknown snapshot.</summary>
    public const string ChainUnreadable = "QCOW0002";
    /// <summary>The engine failed while writing an output.</summary>
    public const string WriteFailed = "QCOW0003";
    /// <summary>A write option (cluster size, compat, compression) or item metadata is invalid.</summary>
    public const string InvalidOption = "QCOW0004";
    /// <summary>Two items would write the same output file.</summary>
    public const string OutputClash = "QCOW0005";
    /// <summary>-question: an output or stamp is out of date.</summary>
    public const string NotUpToDate = "QCOW0006";
    /// <summary>The build was cancelled; no partial output was left.</summary>
    public const string Cancelled = "QCOW0007";
    /// <summary>An I/O error outside the engine (stamps, manifests).</summary>
    public const string IoError = "QCOW0008";
    /// <summary>A chain.json cannot be read.</summary>
    public const string ManifestUnreadable = "QCOW0009";
    /// <summary>Pushing to the registry failed: bad reference, unreachable or refusing registry, a layer that changed.</summary>
    public const string PushFailed = "QCOW0010";
    /// <summary>Warning from the engine about an input (e.g. a backing format that had to be probed).</summary>
    public const string EngineWarning = "QCOW0100";
    /// <summary>Warning: a single export (QcowSnapshot) is not a chain and is not pushed to the registry.</summary>
    public const string ExportNotPushed = "QCOW0101";
}
