using Qcow.Oci;

namespace Qcow.Testing.Registry;

/// <summary>One plain-HTTP registry shared by a test class, started by the first test that asks for it.</summary>
public sealed class RegistryFixture : IDisposable
{
    private readonly Lazy<RegistryServer> _server = new(() => RegistryServer.Start(RegistryAuth.None));

    /// <summary>The registry; skips (or in CI fails) the calling test when docker-registry is missing.</summary>
    public RegistryServer Server
    {
        get
        {
            Tools.Require("docker-registry");
            return _server.Value;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_server.IsValueCreated) _server.Value.Dispose();
    }
}
