namespace Qcow.Oci;

/// <summary>A request failed in a way a retry may cure; used where the caller, not the client, decides how to retry.</summary>
internal sealed class TransientFailure(string message, Exception? inner = null) : Exception(message, inner);
