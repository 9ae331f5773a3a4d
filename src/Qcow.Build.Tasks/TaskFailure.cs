using Qcow.Engine;

namespace Qcow.Build.Tasks;

/// <summary>
/// An error a task step reports: its diagnostic code, the file it is about and the message. Thrown by a step (see
/// <see cref="TaskFailure.Step{T}"/>) and logged once, by <see cref="QcowTask"/>, so no step sets shared state first.
/// </summary>
public sealed class TaskFailure(string code, string? file, string message) : Exception(message)
{
    /// <summary>The QCOWnnnn code (<see cref="Codes"/>).</summary>
    public string Code { get; } = code;

    /// <summary>The file the error is about; null: the project file.</summary>
    public string? File { get; } = file;

    /// <summary>
    /// Runs one step: an engine error escaping it becomes <paramref name="code"/> naming the file the engine named (or
    /// <paramref name="file"/>); an I/O error becomes QCOW0008 and a cancellation QCOW0007, both naming <paramref name="file"/>.
    /// </summary>
    public static T Step<T>(string code, string? file, Func<T> step)
    {
        try
        {
            return step();
        }
        catch (OperationCanceledException)
        {
            throw new TaskFailure(Codes.Cancelled, file, "cancelled; no partial output was left");
        }
        catch (QcowException e)
        {
            throw new TaskFailure(code, e.FilePath ?? file, e.Reason);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TaskFailure(Codes.IoError, file, e.Message);
        }
    }

    /// <summary>Runs one step with no result; see <see cref="Step{T}"/>.</summary>
    public static void Step(string code, string? file, Action step) =>
        Step(code, file, () => { step(); return true; });
}
