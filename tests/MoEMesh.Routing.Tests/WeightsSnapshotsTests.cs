using Google.Protobuf;
using MoEMesh.Dht;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Weights;

namespace MoEMesh.Routing.Tests;

/// <summary>Signed snapshots of expert weights, and the rules the DHT keeps for <c>weights:</c> keys.</summary>
public sealed class WeightsSnapshotsTests
{
    private static readonly PeerIdentity Host = PeerIdentity.FromSeed(31), Other = PeerIdentity.FromSeed(32);
    private static readonly string Sha = new('c', 64);
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static WeightsSnapshot Signed(PeerIdentity by) =>
        WeightsSnapshots.Sign("ffn.0.1", updates: 12, baseUpdates: 4, Sha, 1000, "schema", Now, by, [new WeightsContribution { Host = Other.PeerId.ToString(), Sha256 = new string('d', 64) }]);

    [Fact]
    public void ASignedSnapshot_Verifies_AndNamesItsHost()
    {
        var snapshot = Signed(Host);
        Assert.Null(WeightsSnapshots.Problem(snapshot, "ffn.0.1", "schema"));
        Assert.Equal(Host.PeerId, WeightsSnapshots.SignerOf(snapshot));
        Assert.Null(WeightsSnapshots.Problem(snapshot, "ffn.0.1", "schema", [Host.PeerId.ToString()]));
    }

    public static TheoryData<string, string> Tampering => new()
    {
        { "updates", "does not verify" },
        { "base", "does not verify" },
        { "sha", "does not verify" },
        { "size", "does not verify" },
        { "contribution", "does not verify" },
        { "another key", "does not verify" },
        { "uid", "a snapshot of ffn.0.1, not ffn.0.2" },
        { "schema", "schema hash other is not schema" },
        { "base above total", "its base not above its total" },
        { "not trusted", "does not take weights from" },
        { "no key", "names no host key" },
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public void AChangedOrForeignSnapshot_IsRefused_NamingWhy(string change, string expected)
    {
        var s = Signed(Host);
        string uid = "ffn.0.1", schema = "schema";
        IReadOnlyCollection<string>? trusted = null;
        switch (change)
        {
            case "updates": s.Updates = 1000; break;
            case "base": s.BaseUpdates = 0; break;
            case "sha": s.Sha256 = new string('e', 64); break;
            case "size": s.Size = 1; break;
            case "contribution": s.AveragedFrom[0].Sha256 = new string('f', 64); break;
            case "another key": s.HostKey = ByteString.CopyFrom(Other.PublicKey); break;
            case "uid": uid = "ffn.0.2"; break;
            case "schema": s = WeightsSnapshots.Sign("ffn.0.1", 12, 4, Sha, 1000, "other", Now, Host); break;
            case "base above total": s = WeightsSnapshots.Sign("ffn.0.1", 3, 4, Sha, 1000, "schema", Now, Host); break;
            case "not trusted": trusted = [Other.PeerId.ToString()]; break;
            case "no key": s.HostKey = ByteString.Empty; break;
        }
        var problem = WeightsSnapshots.Problem(s, uid, schema, trusted);
        Assert.NotNull(problem);
        Assert.Contains(expected, problem);
    }

    [Fact]
    public void TheKeySchema_TakesAHoldersSignedRecordOfItsUid_AndRefusesOthers()
    {
        var validator = new RecordValidator(new DhtOptions(), [new KeySchema()]);
        var expires = Now + TimeSpan.FromMinutes(1);
        byte[] Record(WeightsSnapshot snapshot, params string[] addresses)
        {
            var record = new WeightsRecord { Snapshot = snapshot };
            record.Addresses.AddRange(addresses);
            return record.ToByteArray();
        }
        // A holder's record of another host's snapshot: signed by the holder, whose PeerId is the subkey.
        Assert.Null(validator.Check(DhtRecord.Signed("weights:ffn.0.1", Other.PeerId.ToString(), Record(Signed(Host), "10.0.0.1:7700"), expires, Other), Now));
        Assert.Contains("does not carry a snapshot of ffn.0.2",
            validator.Check(DhtRecord.Signed("weights:ffn.0.2", Other.PeerId.ToString(), Record(Signed(Host), "10.0.0.1:7700"), expires, Other), Now));
        Assert.Contains("lists 0 addresses", validator.Check(DhtRecord.Signed("weights:ffn.0.1", Other.PeerId.ToString(), Record(Signed(Host)), expires, Other), Now));
        Assert.Contains("not a weights key", validator.Check(DhtRecord.Signed("weights:ffn..1", Other.PeerId.ToString(), Record(Signed(Host), "10.0.0.1:7700"), expires, Other), Now));
        var bad = Signed(Host);
        bad.Sha256 = "XYZ";
        Assert.Contains("lower-case hex SHA-256", validator.Check(DhtRecord.Signed("weights:ffn.0.1", Other.PeerId.ToString(), Record(bad, "10.0.0.1:7700"), expires, Other), Now));
        Assert.Contains("subkey names their host",
            validator.Check(DhtRecord.Unsigned("weights:ffn.0.1", null, Record(Signed(Host), "10.0.0.1:7700"), expires), Now));
    }
}
