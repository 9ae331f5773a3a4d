using System.Text;
using Qcow.Engine.Chain;

namespace Qcow.Engine.Tests;

/// <summary>chain.json across versions of the writer (the parsing of bad files is tested with the registry client).</summary>
public class ChainManifestTests
{
    [Fact]
    public void A_chain_json_that_records_bytes_read_still_reads_and_is_written_without_them()
    {
        // What versions before the change in the README's changelog wrote.
        const string older = """
            {
              "format": "qcow-chain/1",
              "layers": [
                {
                  "file": "a.qcow2",
                  "backing": null,
                  "sourceImage": "a.qcow2",
                  "snapshot": "sn0",
                  "virtualSize": 1048576,
                  "sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                  "bytesRead": 65536
                }
              ]
            }
            """;
        var manifest = ChainManifest.Parse(Encoding.UTF8.GetBytes(older), "/x/chain.json");
        var layer = Assert.Single(manifest.Layers);
        Assert.Equal(("a.qcow2", "sn0", 1048576L), (layer.File, layer.Snapshot, layer.VirtualSize));
        string written = Encoding.UTF8.GetString(manifest.ToJson());
        Assert.Equal(older.Replace(",\n      \"bytesRead\": 65536", "") + "\n", written);
    }
}
