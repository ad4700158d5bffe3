using System.Text;
using Google.Protobuf;
using MoEMesh.Dht;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Simulation;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Models;

namespace MoEMesh.Routing.Tests;

/// <summary>
/// The key schema Routing registers with the DHT, and attacks on it: values that would wipe, forge or hide
/// experts and models are refused on store and ignored on find, so beam search still finds every live expert.
/// </summary>
public sealed class KeySchemaTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Expires = Now + TimeSpan.FromSeconds(60);
    private static readonly RecordValidator Validator = new(new DhtOptions(), [new KeySchema()]);
    private static readonly PeerIdentity Host = PeerIdentity.FromSeed(21), Attacker = PeerIdentity.FromSeed(22);

    private static ExpertRecord Expert() => new() { Addresses = { "10.0.0.1:7700" }, Type = "ffn", SchemaHash = new ExpertKind("ffn", 8).SchemaHash };

    private static string? Check(DhtRecord record) => Validator.Check(record, Now);

    [Fact]
    public void HonestRecords_AreAccepted()
    {
        Assert.Null(Check(DhtRecord.Signed("expert:ffn.1.2", Host.PeerId.ToString(), Expert().ToByteArray(), Expires, Host)));
        Assert.Null(Check(DhtRecord.Signed("prefix:ffn.1.", $"2:{Host.PeerId}", Encoding.UTF8.GetBytes("ffn.1.2"), Expires, Host)));
        var publication = ModelPublications.Sign("genre", 1, new string('a', 64), 100, Host);
        var model = new ModelRecord { Addresses = { "10.0.0.1:7700" }, Publication = publication }.ToByteArray();
        Assert.Null(Check(DhtRecord.Signed("model:genre", Host.PeerId.ToString(), model, Expires, Host)));
        Assert.Null(Check(DhtRecord.Signed("models", $"genre:{Host.PeerId}", model, Expires, Host)));
        Assert.Null(Check(DhtRecord.Unsigned("greeting", null, Encoding.UTF8.GetBytes("hello"), Expires)));
    }

    public static TheoryData<string, string> Attacks => new()
    {
        { "plain", "holds only entries whose subkey names their host's PeerId" },
        { "unsigned prefix", "entries have the subkey <coordinate>:<host PeerId>" },
        { "prefix of another host", "but is signed by" },
        { "prefix pointing elsewhere", "is not a uid below ffn.1. at coordinate 2" },
        { "garbage record", "is not an ExpertRecord" },
        { "many addresses", "lists 9 addresses" },
        { "huge value", "at most 4096" },
        { "model of another name", "does not carry a publication of genre" },
        { "index without holder", "<model name>:<holder PeerId>" },
    };

    [Theory]
    [MemberData(nameof(Attacks))]
    public void Attacks_AreRefused_NamingWhy(string attack, string expected)
    {
        var host = Host.PeerId.ToString();
        var record = attack switch
        {
            "plain" => DhtRecord.Unsigned("expert:ffn.1.2", null, Expert().ToByteArray(), Expires),
            "unsigned prefix" => DhtRecord.Unsigned("prefix:ffn.1.", "2", Encoding.UTF8.GetBytes("ffn.1.2"), Expires),
            "prefix of another host" => DhtRecord.Signed("prefix:ffn.1.", $"2:{host}", Encoding.UTF8.GetBytes("ffn.1.2"), Expires, Attacker),
            "prefix pointing elsewhere" => DhtRecord.Signed("prefix:ffn.1.", $"2:{Attacker.PeerId}", Encoding.UTF8.GetBytes("ffn.3.3"), Expires, Attacker),
            "garbage record" => DhtRecord.Signed("expert:ffn.1.2", host, new byte[] { 0xFF, 0xFF, 0xFF }, Expires, Host),
            "many addresses" => DhtRecord.Signed("expert:ffn.1.2", host, Expert().Also(e => e.Addresses.AddRange(Enumerable.Repeat("10.0.0.2:1", 8))).ToByteArray(), Expires, Host),
            "huge value" => DhtRecord.Signed("expert:ffn.1.2", host, Expert().Also(e => e.Type = new string('x', 5000)).ToByteArray(), Expires, Host),
            "model of another name" => DhtRecord.Signed("model:genre", host,
                new ModelRecord { Addresses = { "10.0.0.1:7700" }, Publication = ModelPublications.Sign("other", 1, new string('a', 64), 1, Host) }.ToByteArray(), Expires, Host),
            "index without holder" => DhtRecord.Unsigned("models", "genre", new byte[] { 1 }, Expires),
            _ => throw new ArgumentException(attack),
        };
        Assert.Contains(expected, Check(record));
    }

    [Fact]
    public void ForgedPrefixesAndPlainValues_InASwarm_HideNoLiveExpert_FromBeamSearch()
    {
        var clock = new SimulationClock();
        SimulationRunner.Run(clock, async () =>
        {
            await using var swarm = new SimulatedSwarm(clock, seed: 8, schemas: [new KeySchema()]);
            await swarm.GrowAsync(40);
            var grid = new ExpertGrid("ffn", 4, 4);
            var hosts = swarm.Members.Take(4).ToArray();
            var live = new List<ExpertUid>();
            var expiration = clock.GetUtcNow() + TimeSpan.FromMinutes(1);
            for (int h = 0; h < hosts.Length; h++)
            {
                var uids = new[] { ExpertUid.Parse($"ffn.{h}.{h}"), ExpertUid.Parse($"ffn.{h}.{(h + 1) % 4}") };
                live.AddRange(uids);
                var record = Expert();
                await new ExpertDirectory(hosts[h].Node, clock).DeclareAsync(hosts[h].Identity, uids.Select(u => (u, record)).ToArray(), expiration, default);
            }
            // The attacker tries to wipe the root prefix and a host's expert, and to overwrite a host's prefix entry.
            var attacker = swarm.Members[20];
            var attacks = await attacker.Node.StoreManyAsync(
            [
                DhtRecord.Unsigned("prefix:ffn.", null, Encoding.UTF8.GetBytes("ffn.0.0"), clock.GetUtcNow() + TimeSpan.FromMinutes(59)),
                DhtRecord.Unsigned("prefix:ffn.", "0", Encoding.UTF8.GetBytes("ffn.0.1"), clock.GetUtcNow() + TimeSpan.FromMinutes(59)),
                DhtRecord.Unsigned("expert:ffn.0.0", null, new byte[] { 6 }, clock.GetUtcNow() + TimeSpan.FromMinutes(59)),
                DhtRecord.Signed("prefix:ffn.0.", $"0:{hosts[0].Identity.PeerId}", Encoding.UTF8.GetBytes("ffn.0.3"), clock.GetUtcNow() + TimeSpan.FromMinutes(59), attacker.Identity),
            ], default);
            Assert.All(attacks, a => Assert.Equal(0, a.Replicas));

            var directory = new ExpertDirectory(swarm.Members[35].Node, clock);
            var scores = (IReadOnlyList<float[]>)grid.Sizes.Select(s => new float[s]).ToArray();
            var found = (await new BeamSearch(directory).FindAsync(grid, [scores], k: 16, beamWidth: 4, default))[0];
            Assert.Equal(live.Select(u => u.Value).Order(), found.Select(f => f.Uid.Value).Order());
            var hostsOfFirst = (await directory.FindAsync([ExpertUid.Parse("ffn.0.0")], default))[ExpertUid.Parse("ffn.0.0")];
            Assert.Equal(hosts[0].Identity.PeerId, Assert.Single(hostsOfFirst).Host);
            return true;
        });
    }
}
