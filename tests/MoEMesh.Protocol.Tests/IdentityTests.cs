using System.Text;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Protocol.Tests;

public sealed class IdentityTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("moemesh-id-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("", "")]
    [InlineData("00", "1")]
    [InlineData("0000287fb4cd", "11233QC4")]
    [InlineData("48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U")]
    public void Base58_KnownVectors_EncodeAndDecode(string hex, string expected)
    {
        var bytes = Convert.FromHexString(hex);
        Assert.Equal(expected, Base58.Encode(bytes));
        Assert.True(Base58.TryDecode(expected, out var decoded));
        Assert.Equal(bytes, decoded);
    }

    [Fact]
    public void PeerId_IsBase58OfSha256OfPublicKey_AndParsesBack()
    {
        using var identity = PeerIdentity.Create();
        var expected = Base58.Encode(System.Security.Cryptography.SHA256.HashData(identity.PublicKey));
        Assert.Equal(expected, identity.PeerId.Text);
        Assert.Equal(identity.PeerId, PeerId.Parse(expected));
        Assert.True(identity.PeerId.Matches(identity.PublicKey));
    }

    [Fact]
    public void PeerId_FromHash_IsTheIdOfTheKeyWithThatHash_AndRejectsOtherLengths()
    {
        using var identity = PeerIdentity.Create();
        Assert.Equal(identity.PeerId, PeerId.FromHash(identity.PeerId.Hash));
        var e = Assert.Throws<ArgumentException>(() => PeerId.FromHash(new byte[20]));
        Assert.Contains("32 bytes; got 20", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0OIl")]
    [InlineData("2NEpo7TZRRrLZSi2U")]
    public void PeerId_Parse_RejectsNonIds(string text)
    {
        Assert.False(PeerId.TryParse(text, out _));
        Assert.Throws<FormatException>(() => PeerId.Parse(text));
    }

    [Fact]
    public void Verify_AcceptsOwnSignature_RejectsOtherKeyOrData()
    {
        using var a = PeerIdentity.Create();
        using var b = PeerIdentity.Create();
        var data = Encoding.UTF8.GetBytes("transcript");
        var signature = a.Sign(data);
        Assert.True(PeerIdentity.Verify(a.PublicKey, data, signature));
        Assert.False(PeerIdentity.Verify(b.PublicKey, data, signature));
        Assert.False(PeerIdentity.Verify(a.PublicKey, Encoding.UTF8.GetBytes("other"), signature));
        Assert.False(PeerIdentity.Verify([1, 2, 3], data, signature));
    }

    [Fact]
    public void LoadOrCreate_CreatesKeyFileWithMode0600_AndReloadsSameId()
    {
        var path = Path.Combine(_directory, "keys", "node.key");
        PeerId first;
        using (var created = PeerIdentity.LoadOrCreate(path)) first = created.PeerId;
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        using var loaded = PeerIdentity.LoadOrCreate(path);
        Assert.Equal(first, loaded.PeerId);
    }

    [Fact]
    public void LoadOrCreate_GarbageKeyFile_FailsNamingTheFile()
    {
        var path = Path.Combine(_directory, "bad.key");
        File.WriteAllText(path, "not a key");
        var e = Assert.Throws<InvalidDataException>(() => PeerIdentity.LoadOrCreate(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void FromSeed_IsDeterministic()
    {
        using var a = PeerIdentity.FromSeed(7);
        using var b = PeerIdentity.FromSeed(7);
        using var c = PeerIdentity.FromSeed(8);
        Assert.Equal(a.PeerId, b.PeerId);
        Assert.NotEqual(a.PeerId, c.PeerId);
    }
}
