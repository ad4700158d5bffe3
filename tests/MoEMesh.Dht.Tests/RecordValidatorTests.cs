using MoEMesh.Dht.Records;

namespace MoEMesh.Dht.Tests;

public class RecordValidatorTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly RecordValidator Validator = new(new DhtOptions());
    private static readonly DateTimeOffset Expires = Now + TimeSpan.FromSeconds(60);

    private static string HostA => PeerIdentityCache.A.PeerId.ToString();

    [Fact]
    public void SignedByTheOwnerOfItsSubkey_IsAccepted()
    {
        var record = DhtRecord.Signed("expert:ffn.1", HostA, new byte[] { 1 }, Expires, PeerIdentityCache.A);
        Assert.Null(Validator.Check(record, Now));
    }

    [Fact]
    public void OwnerKey_SignedByItsOwner_IsAccepted()
    {
        var record = DhtRecord.Signed($"peer:{HostA}", null, new byte[] { 1 }, Expires, PeerIdentityCache.A);
        Assert.Null(Validator.Check(record, Now));
    }

    [Fact]
    public void Unsigned_WhenNoOwnerIsNamed_IsAccepted()
    {
        Assert.Null(Validator.Check(DhtRecord.Unsigned("prefix:ffn.", "3", new byte[] { 1 }, Expires), Now));
    }

    [Fact]
    public void Forged_SignedByAnotherPeer_IsRejectedNamingBoth()
    {
        var forged = DhtRecord.Signed("expert:ffn.1", HostA, new byte[] { 1 }, Expires, PeerIdentityCache.B);
        var problem = Validator.Check(forged, Now);
        Assert.Contains($"names owner {HostA}", problem);
        Assert.Contains(PeerIdentityCache.B.PeerId.ToString(), problem);
    }

    [Fact]
    public void Unsigned_WhenTheSubkeyNamesAnOwner_IsRejected()
    {
        var problem = Validator.Check(DhtRecord.Unsigned("expert:ffn.1", HostA, new byte[] { 1 }, Expires), Now);
        Assert.Contains("must carry its signature", problem);
    }

    [Fact]
    public void Tampered_ValueOrExpirationChanged_IsRejected()
    {
        var good = DhtRecord.Signed("expert:ffn.1", HostA, new byte[] { 1 }, Expires, PeerIdentityCache.A);
        var newValue = DhtRecord.FromWire(good.Key, good.Subkey, new byte[] { 2 }, good.Expiration, good.PublicKey, good.Signature);
        var longer = DhtRecord.FromWire(good.Key, good.Subkey, good.Value, good.Expiration + TimeSpan.FromSeconds(30), good.PublicKey, good.Signature);
        Assert.Contains("does not verify", Validator.Check(newValue, Now));
        Assert.Contains("does not verify", Validator.Check(longer, Now));
    }

    [Fact]
    public void Replayed_UnderAnotherKeyOrSubkey_IsRejected()
    {
        var good = DhtRecord.Signed("expert:ffn.1", HostA, new byte[] { 1 }, Expires, PeerIdentityCache.A);
        var otherKey = DhtRecord.FromWire("expert:ffn.2", good.Subkey, good.Value, good.Expiration, good.PublicKey, good.Signature);
        var asPlain = DhtRecord.FromWire($"peer:{HostA}", null, good.Value, good.Expiration, good.PublicKey, good.Signature);
        Assert.Contains("does not verify", Validator.Check(otherKey, Now));
        Assert.Contains("does not verify", Validator.Check(asPlain, Now));
    }

    [Fact]
    public void Replayed_AfterItExpired_IsRejected()
    {
        var good = DhtRecord.Signed("expert:ffn.1", HostA, new byte[] { 1 }, Expires, PeerIdentityCache.A);
        Assert.Contains("expired", Validator.Check(good, Expires + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void ExpirationBeyondMaxTtl_IsRejected()
    {
        var far = DhtRecord.Unsigned("k", null, new byte[] { 1 }, Now + TimeSpan.FromHours(2));
        Assert.Contains("MaxTtl", Validator.Check(far, Now));
    }

    [Fact]
    public void KeyAndSubkeyNamingDifferentOwners_IsRejected()
    {
        var record = DhtRecord.Signed($"peer:{HostA}", PeerIdentityCache.B.PeerId.ToString(), new byte[] { 1 }, Expires, PeerIdentityCache.A);
        Assert.Contains("but subkey names owner", Validator.Check(record, Now));
    }

    [Fact]
    public void OversizedValue_IsRejected()
    {
        var record = DhtRecord.Unsigned("k", null, new byte[70_000], Expires);
        Assert.Contains("exceeds 65536", Validator.Check(record, Now));
    }

    [Fact]
    public void Ownership_IsTheWholeTextOrThePartAfterTheLastColon()
    {
        Assert.Equal(PeerIdentityCache.A.PeerId, RecordOwnership.OwnerOf(HostA));
        Assert.Equal(PeerIdentityCache.A.PeerId, RecordOwnership.OwnerOf($"peer:{HostA}"));
        Assert.Null(RecordOwnership.OwnerOf("expert:ffn.3.14"));
        Assert.Null(RecordOwnership.OwnerOf("3"));
        Assert.Null(RecordOwnership.OwnerOf(null));
    }
}
