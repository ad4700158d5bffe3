using MoEMesh.Node.Weights;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Weights;

namespace MoEMesh.Node.Tests;

/// <summary>The snapshots a node holds on disk: bounded per uid and in bytes, never an expert's newest, read back after a restart.</summary>
public sealed class WeightsStoreTests : IDisposable
{
    private static readonly PeerIdentity Host = PeerIdentity.FromSeed(51);
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private WeightsStore Store(int keep = 3, long maxBytes = 1 << 20, PeerIdentity? self = null) =>
        new(_folder.Sub("published"), new WeightsOptions { KeepPerExpert = keep, MaxBytes = maxBytes }, (self ?? Host).PeerId);

    /// <summary>Installs a file of <paramref name="size"/> bytes as a snapshot of <paramref name="uid"/> at <paramref name="updates"/>.</summary>
    private static HeldSnapshot Add(WeightsStore store, string uid, long updates, int size = 100, long createdMs = 0, PeerIdentity? signer = null)
    {
        var path = store.NewIncomingPath();
        var bytes = new byte[size];
        BitConverter.TryWriteBytes(bytes, updates);
        System.Text.Encoding.ASCII.GetBytes(uid).CopyTo(bytes, 8); // each uid's snapshots differ, as real ones name their expert
        File.WriteAllBytes(path, bytes);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        var created = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + (createdMs == 0 ? updates : createdMs));
        return store.Install(path, WeightsSnapshots.Sign(uid, updates, 0, sha, (ulong)size, "schema", created, signer ?? Host));
    }

    [Fact]
    public void AtMostKeepPerExpert_AreKeptPerUid_NewestFirst()
    {
        var store = Store(keep: 2);
        var oldest = Add(store, "ffn.0.0", 1);
        Add(store, "ffn.0.0", 2);
        var newest = Add(store, "ffn.0.0", 3);
        Add(store, "ffn.0.1", 1);
        Assert.Equal([3L, 2L], store.Of("ffn.0.0").Select(h => h.Snapshot.Updates));
        Assert.Null(store.FindBySha(oldest.Sha256));
        Assert.False(File.Exists(oldest.Path));
        Assert.Equal(newest, store.FindBySha(newest.Sha256));
        Assert.Equal(["ffn.0.0", "ffn.0.1"], store.Newest().Select(h => h.Uid).Order());
    }

    [Fact]
    public void PastMaxBytes_TheOldestGoFirst_ButNeverTheNewestOfThisNodesOwn()
    {
        var store = Store(keep: 10, maxBytes: 250);
        Add(store, "ffn.0.0", 1, createdMs: 10);
        Add(store, "ffn.0.0", 2, createdMs: 20);
        Add(store, "ffn.0.1", 1, createdMs: 30);
        Add(store, "ffn.0.1", 2, createdMs: 40);
        // 400 bytes over a 250-byte budget: the two older ones go, each uid's newest stays even though 200 > 250 - 100.
        Assert.Equal((2, 200L), store.Usage());
        Assert.Equal([2L, 2L], store.Newest().Select(h => h.Snapshot.Updates));
        Add(store, "ffn.0.2", 1, createdMs: 50);
        Assert.Equal((3, 300L), store.Usage());
        // Copies held for other hosts have no such claim: a flood of them cannot fill the disk.
        var stranger = PeerIdentity.FromSeed(52);
        for (int i = 0; i < 5; i++) Add(store, $"ffn.9.{i}", 1, createdMs: 60 + i, signer: stranger);
        Assert.Equal((3, 300L), store.Usage());
        Assert.DoesNotContain(store.Newest(), h => h.Uid.StartsWith("ffn.9.", StringComparison.Ordinal));
    }

    [Fact]
    public void ARestartedStore_ReadsWhatItHeld_AndDropsFilesThatDoNotMatchTheirSnapshot()
    {
        var store = Store();
        var kept = Add(store, "ffn.0.0", 4);
        var damaged = Add(store, "ffn.0.1", 5);
        File.WriteAllBytes(damaged.Path, new byte[7]); // not the size its snapshot says
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(kept.Path)!, "stray.safetensors"), "no snapshot beside it");
        Directory.CreateDirectory(store.IncomingFolder);
        File.WriteAllText(Path.Combine(store.IncomingFolder, "half.tmp"), "a fetch cut short");

        var again = Store();
        Assert.Equal([kept.Sha256], again.Newest().Select(h => h.Sha256));
        Assert.False(File.Exists(damaged.Path));
        Assert.False(Directory.Exists(again.IncomingFolder));
        Assert.Single(Directory.EnumerateFiles(Path.GetDirectoryName(kept.Path)!, "*.safetensors"));
    }

    [Fact]
    public void ASnapshotAlreadyHeld_IsKeptAsItIs()
    {
        var store = Store();
        var first = Add(store, "ffn.0.0", 4);
        var second = Add(store, "ffn.0.0", 4);
        Assert.Equal(first, second);
        Assert.Equal((1, 100L), store.Usage());
        Assert.Empty(Directory.EnumerateFiles(store.IncomingFolder));
    }
}
