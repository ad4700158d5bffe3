using Google.Protobuf;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Routing.Weights;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Node.Weights;

/// <summary>A snapshot file this node holds: its host's own or a copy held for another host.</summary>
internal sealed record HeldSnapshot(WeightsSnapshot Snapshot, string Path)
{
    public string Uid => Snapshot.Uid;

    public string Sha256 => Snapshot.Sha256;
}

/// <summary>
/// The snapshots of expert weights this node holds, on disk under <c>&lt;folder&gt;/&lt;uid&gt;/</c>: each a
/// safetensors file named by its SHA-256 and the signed snapshot beside it (<c>.snapshot</c>). Bounded: at most
/// <see cref="WeightsOptions.KeepPerExpert"/> per uid, newest first, and <see cref="WeightsOptions.MaxBytes"/>
/// in all, the oldest going first, but never the newest snapshot of a uid that this node signed itself (its
/// own experts'; copies held for others, which any peer can offer, have no such claim). Thread-safe.
/// </summary>
internal sealed class WeightsStore
{
    private const string FileExtension = ".safetensors", SnapshotExtension = ".snapshot";
    private readonly string _folder;
    private readonly WeightsOptions _options;
    private readonly PeerId _self;
    private readonly Dictionary<string, HeldSnapshot> _bySha = new(StringComparer.Ordinal);

    public WeightsStore(string folder, WeightsOptions options, PeerId self)
    {
        _folder = folder;
        _options = options;
        _self = self;
        Load();
    }

    /// <summary>Where fetches and new snapshots are written before they are installed.</summary>
    public string IncomingFolder => Path.Combine(_folder, ".incoming");

    /// <summary>A new temporary file in <see cref="IncomingFolder"/> (the caller installs or deletes it).</summary>
    public string NewIncomingPath()
    {
        System.IO.Directory.CreateDirectory(IncomingFolder);
        return Path.Combine(IncomingFolder, $"{Guid.NewGuid():N}.tmp");
    }

    /// <summary>The held snapshot with this SHA-256, or null.</summary>
    public HeldSnapshot? FindBySha(string sha256)
    {
        lock (_bySha) return _bySha.GetValueOrDefault(sha256);
    }

    /// <summary>The newest held snapshot of each uid (most updates, then latest made).</summary>
    public IReadOnlyList<HeldSnapshot> Newest()
    {
        lock (_bySha) return _bySha.Values.GroupBy(h => h.Uid, StringComparer.Ordinal).Select(g => Order(g).First()).ToArray();
    }

    /// <summary>The held snapshots of <paramref name="uid"/>, newest first.</summary>
    public IReadOnlyList<HeldSnapshot> Of(string uid)
    {
        lock (_bySha) return Order(_bySha.Values.Where(h => h.Uid == uid)).ToArray();
    }

    /// <summary>How many snapshots and bytes are held.</summary>
    public (int Count, long Bytes) Usage()
    {
        lock (_bySha) return (_bySha.Count, _bySha.Values.Sum(h => (long)h.Snapshot.Size));
    }

    /// <summary>
    /// Moves the file at <paramref name="incoming"/> (whose bytes the caller checked against the snapshot) into
    /// the store, writes its snapshot beside it, and trims the store. A snapshot already held is kept as it is.
    /// </summary>
    public HeldSnapshot Install(string incoming, WeightsSnapshot snapshot)
    {
        var folder = Path.Combine(_folder, snapshot.Uid);
        System.IO.Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, snapshot.Sha256 + FileExtension);
        lock (_bySha)
        {
            if (_bySha.TryGetValue(snapshot.Sha256, out var held) && held.Snapshot.Updates >= snapshot.Updates)
            {
                File.Delete(incoming);
                return held;
            }
            File.Move(incoming, path, overwrite: true);
            AtomicFile.Write(Path.ChangeExtension(path, SnapshotExtension), stream => snapshot.WriteTo(stream));
            var installed = _bySha[snapshot.Sha256] = new HeldSnapshot(snapshot, path);
            Trim();
            return installed;
        }
    }

    private static IOrderedEnumerable<HeldSnapshot> Order(IEnumerable<HeldSnapshot> held) =>
        held.OrderByDescending(h => h.Snapshot.Updates).ThenByDescending(h => h.Snapshot.CreatedUnixMs).ThenBy(h => h.Sha256, StringComparer.Ordinal);

    private void Trim()
    {
        var newest = new HashSet<HeldSnapshot>();
        foreach (var uid in _bySha.Values.GroupBy(h => h.Uid, StringComparer.Ordinal))
        {
            var ordered = Order(uid).ToArray();
            if (Order(ordered.Where(h => WeightsSnapshots.SignerOf(h.Snapshot) == _self)).FirstOrDefault() is { } own) newest.Add(own);
            foreach (var old in ordered.Skip(_options.KeepPerExpert)) Remove(old);
        }
        long bytes = _bySha.Values.Sum(h => (long)h.Snapshot.Size);
        foreach (var old in _bySha.Values.Where(h => !newest.Contains(h)).OrderBy(h => h.Snapshot.CreatedUnixMs).ToArray())
        {
            if (bytes <= _options.MaxBytes) break;
            Remove(old);
            bytes -= (long)old.Snapshot.Size;
        }
    }

    private void Remove(HeldSnapshot held)
    {
        _bySha.Remove(held.Sha256);
        File.Delete(held.Path);
        File.Delete(Path.ChangeExtension(held.Path, SnapshotExtension));
    }

    /// <summary>Reads what an earlier run left: snapshots whose file is whole; temporary and unmatched files are removed.</summary>
    private void Load()
    {
        if (!System.IO.Directory.Exists(_folder)) return;
        if (System.IO.Directory.Exists(IncomingFolder)) System.IO.Directory.Delete(IncomingFolder, recursive: true);
        foreach (var folder in System.IO.Directory.EnumerateDirectories(_folder))
        {
            if (!ExpertUid.TryParse(Path.GetFileName(folder), out _, out _)) continue;
            foreach (var file in System.IO.Directory.EnumerateFiles(folder))
            {
                var snapshotPath = Path.ChangeExtension(file, SnapshotExtension);
                if (!file.EndsWith(FileExtension, StringComparison.Ordinal)) continue;
                var snapshot = TryRead(snapshotPath);
                if (snapshot is null || snapshot.Sha256 + FileExtension != Path.GetFileName(file) || snapshot.Uid != Path.GetFileName(folder)
                    || new FileInfo(file).Length != (long)snapshot.Size)
                {
                    File.Delete(file);
                    File.Delete(snapshotPath);
                    continue;
                }
                _bySha[snapshot.Sha256] = new HeldSnapshot(snapshot, file);
            }
        }
        Trim();
    }

    private static WeightsSnapshot? TryRead(string path)
    {
        try
        {
            return File.Exists(path) ? WeightsSnapshot.Parser.ParseFrom(File.ReadAllBytes(path)) : null;
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }
}
