using System.Reflection;
using System.Text.RegularExpressions;
using Qcow.Build.Tasks;
using Qcow.Build.Tests.Support;

namespace Qcow.Build.Tests;

/// <summary>The SDK's targets and the tasks agree on item metadata names (ItemMetadata is the one list).</summary>
public sealed partial class MetadataNameTests
{
    // MSBuild's own metadata, and ProjectReference's, which the targets use but the tasks never set.
    private static readonly string[] MSBuildNames = ["Identity", "GlobalPropertiesToRemove", "SetConfiguration", "SetPlatform"];

    [Fact]
    public void Every_metadata_name_and_Kind_value_in_Sdk_targets_is_an_ItemMetadata_constant()
    {
        var constants = typeof(ItemMetadata).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).ToHashSet(StringComparer.Ordinal);
        string targets = File.ReadAllText(Path.Combine(Repo.SdkFolder, "Sdk.targets"));

        var used = MetadataReference().Matches(targets).Select(m => m.Groups["name"].Value)
            .Concat(MetadataValue().Matches(targets).SelectMany(m => m.Groups["name"].Value == ItemMetadata.Kind
                ? new[] { m.Groups["name"].Value, m.Groups["value"].Value }
                : [m.Groups["name"].Value]))
            .Concat(KindAttribute().Matches(targets).Select(m => m.Groups["value"].Value))
            .Except(MSBuildNames, StringComparer.Ordinal).Distinct(StringComparer.Ordinal).ToList();

        Assert.NotEmpty(used);
        Assert.DoesNotContain(used, n => !constants.Contains(n));
    }

    [GeneratedRegex(@"%\((?:[A-Za-z_][A-Za-z0-9_]*\.)?(?<name>[A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex MetadataReference();

    [GeneratedRegex(@"WithMetadataValue\('(?<name>[A-Za-z0-9_]+)',\s*'(?<value>[A-Za-z0-9_]+)'\)")]
    private static partial Regex MetadataValue();

    [GeneratedRegex(@"\sKind=""(?<value>[A-Za-z]+)""")]
    private static partial Regex KindAttribute();
}
