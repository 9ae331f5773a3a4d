using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Qcow.Build.Tasks;
using Qcow.Build.Tests.Support;
using Qcow.Testing;
using Qcow.Testing.Registry;

namespace Qcow.Build.Tests;

/// <summary>PushQcowChain run directly: what it refuses before sending anything.</summary>
public sealed class PushQcowChainTests : IDisposable
{
    private readonly TempDir _dir = new("push-task");

    [Fact]
    public void Two_chains_pushed_to_one_repository_are_one_QCOW0005_naming_both_and_nothing_is_sent()
    {
        // Nothing listens on the registry's port: a request would be a QCOW0010, not the clash.
        string a = Path.Combine(Chains.Synthetic(_dir["a"], seed: 1, 4096), "chain.json");
        string b = Path.Combine(Chains.Synthetic(_dir["b"], seed: 2, 4096), "chain.json");
        string c = Path.Combine(Chains.Synthetic(_dir["c"], seed: 3, 4096), "chain.json");
        ITaskItem Chain(string chainJson, string? repository)
        {
            var item = new TaskItem(chainJson);
            item.SetMetadata("ChainJson", chainJson);
            if (repository is not null) item.SetMetadata("Repository", repository);
            return item;
        }
        var engine = new FakeBuildEngine(_dir["p.imgproj"]);
        var task = new PushQcowChain
        {
            BuildEngine = engine, ProjectName = "p", Registry = $"127.0.0.1:{RegistryServer.FreePort()}", Repository = "vm/base",
            Chains = [Chain(a, null), Chain(b, "vm/other"), Chain(c, "vm/base")],
        };
        Assert.False(task.Execute());
        var error = Assert.Single(engine.Errors);
        Assert.Equal("QCOW0005", error.Code);
        Assert.Equal(c, error.File);
        Assert.Equal($"{a} and {c} would both be pushed to {task.Registry}/vm/base; give one of the QcowChain items other Repository metadata", error.Message);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("65")]
    [InlineData("three")]
    [InlineData("2.5")]
    public void A_MaxConcurrentUploads_that_is_not_a_number_from_1_to_64_is_one_QCOW0004_naming_the_property_and_nothing_is_sent(string value)
    {
        // Nothing listens on the registry's port: a request would be a QCOW0010, not the invalid option.
        string chainJson = Path.Combine(Chains.Synthetic(_dir["a"], seed: 1, 4096), "chain.json");
        var item = new TaskItem(chainJson);
        item.SetMetadata("ChainJson", chainJson);
        var engine = new FakeBuildEngine(_dir["p.imgproj"]);
        var task = new PushQcowChain
        {
            BuildEngine = engine, ProjectName = "p", Registry = $"127.0.0.1:{RegistryServer.FreePort()}", Repository = "vm/base",
            MaxConcurrentUploads = value, Chains = [item],
        };
        Assert.False(task.Execute());
        var error = Assert.Single(engine.Errors);
        Assert.Equal("QCOW0004", error.Code);
        Assert.Equal(_dir["p.imgproj"], error.File);
        Assert.Equal($"QcowMaxConcurrentUploads '{value}': use a number from 1 to 64", error.Message);
    }

    /// <inheritdoc />
    public void Dispose() => _dir.Dispose();
}
