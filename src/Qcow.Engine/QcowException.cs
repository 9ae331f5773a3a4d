namespace Qcow.Engine;

/// <summary>
/// The one exception type the engine lets escape for anything that is wrong with an input, an option or the
/// environment. Its message is a single line that names the file and says what to do.
/// </summary>
public class QcowException : Exception
{
    /// <summary>Creates an error about <paramref name="filePath"/> (may be null when no file is involved).</summary>
    public QcowException(string? filePath, string message, Exception? inner = null)
        : base(filePath is null ? message : $"{filePath}: {message}", inner)
    {
        FilePath = filePath;
        Reason = message;
    }

    /// <summary>The file the error is about, if any.</summary>
    public string? FilePath { get; }

    /// <summary>The message without the file name.</summary>
    public string Reason { get; }
}

/// <summary>A malformed, unsupported or hostile image: names the file and the header field or table at fault.</summary>
public sealed class QcowFormatException : QcowException
{
    /// <summary>Creates an error about field <paramref name="field"/> of <paramref name="filePath"/>.</summary>
    public QcowFormatException(string filePath, string field, string message, Exception? inner = null)
        : base(filePath, $"{field}: {message}", inner)
    {
        Field = field;
    }

    /// <summary>The header field, extension or table that is at fault (e.g. <c>l1_size</c>).</summary>
    public string Field { get; }
}
