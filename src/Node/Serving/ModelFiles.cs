using System.Security.Cryptography;
using MoEMesh.Protocol.Wire.Experts;

namespace MoEMesh.Node.Serving;

/// <summary>
/// The model files this node offers: every file in the model folder, named by its file name without
/// extension, identified by its SHA-256, versioned by its last write time (Unix ms, so a publisher that
/// rewrites a trunk announces a newer version). Hashes are cached by (size, write time), so rescanning
/// every announcement is cheap.
/// </summary>
internal sealed class ModelFiles(string folder)
{
    private readonly Dictionary<string, Entry> _byPath = new(StringComparer.Ordinal);

    /// <summary>Files as of the last <see cref="Refresh"/>.</summary>
    public IReadOnlyList<Entry> Current { get; private set; } = [];

    /// <summary>Rescans the folder (missing folder: no models).</summary>
    public IReadOnlyList<Entry> Refresh()
    {
        var current = new List<Entry>();
        if (Directory.Exists(folder))
        {
            foreach (var path in Directory.EnumerateFiles(folder).Order(StringComparer.Ordinal))
            {
                var info = new FileInfo(path);
                long written = new DateTimeOffset(info.LastWriteTimeUtc).ToUnixTimeMilliseconds();
                lock (_byPath)
                {
                    if (!_byPath.TryGetValue(path, out var entry) || entry.Size != info.Length || entry.Version != written)
                        _byPath[path] = entry = new Entry(Path.GetFileNameWithoutExtension(path), path, info.Length, written, Sha256Of(path));
                    current.Add(entry);
                }
            }
        }
        Current = current;
        return current;
    }

    /// <summary>The file with this SHA-256, if offered.</summary>
    public Entry? Find(string sha256) => Current.FirstOrDefault(e => e.Sha256 == sha256);

    private static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>One offered file.</summary>
    public sealed record Entry(string Name, string Path, long Size, long Version, string Sha256)
    {
        /// <summary>Its DHT record at <paramref name="addresses"/>.</summary>
        public ModelRecord Record(IEnumerable<string> addresses)
        {
            var record = new ModelRecord { Sha256 = Sha256, Size = (ulong)Size, Version = Version };
            record.Addresses.AddRange(addresses);
            return record;
        }
    }
}
