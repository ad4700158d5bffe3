using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Protocol.Tests;

public class AddressingTests
{
    [Theory]
    [InlineData("ffn.3.14", "ffn", new[] { 3, 14 })]
    [InlineData("ffn.0", "ffn", new[] { 0 })]
    [InlineData("my-expert_v2.10.0.7", "my-expert_v2", new[] { 10, 0, 7 })]
    public void ExpertUid_Valid_Parses(string text, string name, int[] coordinates)
    {
        var uid = ExpertUid.Parse(text);
        Assert.Equal(name, uid.Name);
        Assert.Equal(coordinates, uid.Coordinates);
        Assert.Equal(text, uid.ToString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("ffn", "at least one coordinate")]
    [InlineData("ffn.", "at least one coordinate")]
    [InlineData("ffn.3.", "must not end with '.'")]
    [InlineData(".3", "no name")]
    [InlineData("ffn.03", "leading zeros")]
    [InlineData("ffn.-1", "'-1'")]
    [InlineData("ffn.3..4", "coordinate ''")]
    [InlineData("ffn.x", "'x'")]
    [InlineData("f n.1", "whitespace")]
    [InlineData("ffn.99999999999", "'99999999999'")]
    public void ExpertUid_Invalid_SaysWhy(string text, string reason)
    {
        Assert.False(ExpertUid.TryParse(text, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Fact]
    public void ExpertUid_TooLong_IsRejected()
    {
        Assert.False(ExpertUid.TryParse(new string('a', 300) + ".1", out _, out var error));
        Assert.Contains("256", error);
    }

    [Theory]
    [InlineData("ffn.", new int[0])]
    [InlineData("ffn.3.", new[] { 3 })]
    [InlineData("ffn.3.14.", new[] { 3, 14 })]
    public void ExpertPrefix_Valid_Parses(string text, int[] coordinates)
    {
        Assert.Equal(coordinates, ExpertPrefix.Parse(text).Coordinates);
    }

    [Theory]
    [InlineData("ffn")]
    [InlineData("ffn.3")]
    [InlineData("ffn.03.")]
    public void ExpertPrefix_Invalid_IsRejected(string text)
    {
        Assert.Throws<FormatException>(() => ExpertPrefix.Parse(text));
    }

    [Fact]
    public void Prefix_ChildUidAndContains_Compose()
    {
        var root = ExpertPrefix.Parse("ffn.");
        var three = root.Child(3);
        Assert.Equal("ffn.3.", three.Value);
        Assert.Equal("ffn.3.14", three.Uid(14).Value);
        Assert.True(three.Contains(ExpertUid.Parse("ffn.3.14")));
        Assert.False(three.Contains(ExpertUid.Parse("ffn.31.4")));
        Assert.Equal(three, ExpertUid.Parse("ffn.3.14").Prefix(1));
        Assert.Equal(root, ExpertUid.Parse("ffn.3.14").Prefix(0));
    }

    [Theory]
    [InlineData("127.0.0.1:7000", "127.0.0.1", 7000)]
    [InlineData("[::1]:80", "::1", 80)]
    [InlineData("node-3.local:65535", "node-3.local", 65535)]
    public void PeerAddress_Valid_Parses(string text, string host, int port)
    {
        var address = PeerAddress.Parse(text);
        Assert.Equal(new PeerAddress(host, port), address);
        Assert.Equal(text, address.ToString());
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:70000")]
    [InlineData(":7000")]
    [InlineData("a b:1")]
    public void PeerAddress_Invalid_SaysWhatIsExpected(string text)
    {
        var e = Assert.Throws<FormatException>(() => PeerAddress.Parse(text));
        Assert.Contains("host:port", e.Message);
    }

    [Theory]
    [InlineData("203.0.113.7", "203.0.113.0/24")]
    [InlineData("::ffff:203.0.113.200", "203.0.113.0/24")]
    [InlineData("2001:db8:1234:5678::1", "2001:db8:1234::/48")]
    public void AddressNetwork_GroupsIPv4By24_AndIPv6By48(string address, string network) =>
        Assert.Equal(network, AddressNetwork.Of(System.Net.IPAddress.Parse(address)));

    [Fact]
    public void PeerAddress_HostLongerThanDnsAllows_IsInvalid()
    {
        Assert.True(PeerAddress.TryParse(new string('a', PeerAddress.MaxHostLength) + ":1", out _));
        Assert.False(PeerAddress.TryParse(new string('a', PeerAddress.MaxHostLength + 1) + ":1", out _));
    }

    [Theory]
    [InlineData("127.0.0.1:7000", true)]
    [InlineData("node-3.local:7000", true)]
    [InlineData("[2001:db8::1]:7000", true)]
    [InlineData("0.0.0.0:7000", false)]
    [InlineData("[::]:7000", false)]
    [InlineData("255.255.255.255:7000", false)]
    [InlineData("239.1.2.3:7000", false)]
    [InlineData("[ff02::1]:7000", false)]
    public void PeerAddress_IsDialable_OnlyWhereAPeerCanBeReached(string text, bool dialable) =>
        Assert.Equal(dialable, PeerAddress.Parse(text).IsDialable);

    [Fact]
    public void PeerEndpoint_WithPeerId_Parses()
    {
        using var identity = PeerIdentity.FromSeed(1);
        var endpoint = PeerEndpoint.Parse($"{identity.PeerId}@127.0.0.1:9");
        Assert.Equal(identity.PeerId, endpoint.PeerId);
        Assert.Equal(9, endpoint.Address.Port);
    }
}
