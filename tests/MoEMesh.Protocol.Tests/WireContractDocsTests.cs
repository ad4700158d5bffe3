namespace MoEMesh.Protocol.Tests;

/// <summary>The wire contract a client in another language reads names every file it needs and the version peers speak.</summary>
public class WireContractDocsTests
{
    [Fact]
    public void TheContract_NamesEveryProtoFile_AndTheProtocolVersion()
    {
        var protocol = Path.Combine(Testing.RepositoryRoot.Path, "src", "Protocol");
        var readme = File.ReadAllText(Path.Combine(protocol, "README.md"));
        var contract = readme[readme.IndexOf("## The wire contract", StringComparison.Ordinal)..];
        foreach (var proto in Directory.EnumerateFiles(Path.Combine(protocol, "Protos"), "*.proto"))
            Assert.Contains($"`{Path.GetFileName(proto)}`", contract);
        Assert.Contains($"## The wire contract (protocol version {PeerProtocolOptions.ProtocolVersion})", readme);
    }
}
