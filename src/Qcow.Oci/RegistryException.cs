using Qcow.Engine;

namespace Qcow.Oci;

/// <summary>
/// A registry refused a request, could not be reached, or sent something that does not verify. The message is one
/// line naming the registry, repository or file and never holds a credential.
/// </summary>
public sealed class RegistryException : QcowException
{
    /// <summary>Creates an error about <paramref name="subject"/> (a reference, blob or file).</summary>
    public RegistryException(string subject, string message, Exception? inner = null) : base(subject, message, inner)
    {
    }
}
