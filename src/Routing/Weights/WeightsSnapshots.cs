using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;

namespace MoEMesh.Routing.Weights;

/// <summary>
/// Signs and checks <see cref="WeightsSnapshot"/>s: a host signs each snapshot of its expert's weights, so a
/// copy held by any peer can be traced to the host that made it, and nobody can pass other weights, another
/// update count or another expert's weights off as that host's.
/// </summary>
public static class WeightsSnapshots
{
    private static readonly byte[] Domain = "moemesh-weights-snapshot-v1\0"u8.ToArray();

    /// <summary>Most contributions one averaged snapshot lists.</summary>
    public const int MaxContributions = 8;

    /// <summary>A snapshot of <paramref name="uid"/>'s weights file, signed by <paramref name="host"/>.</summary>
    public static WeightsSnapshot Sign(string uid, long updates, long baseUpdates, string sha256, ulong size, string schemaHash, DateTimeOffset created, PeerIdentity host,
        IEnumerable<WeightsContribution>? averagedFrom = null)
    {
        var snapshot = new WeightsSnapshot
        {
            Uid = uid, Updates = updates, BaseUpdates = baseUpdates, Sha256 = sha256, Size = size, SchemaHash = schemaHash, CreatedUnixMs = created.ToUnixTimeMilliseconds(),
            HostKey = ByteString.CopyFrom(host.PublicKey),
        };
        if (averagedFrom is not null) snapshot.AveragedFrom.AddRange(averagedFrom);
        snapshot.Signature = ByteString.CopyFrom(host.Sign(SignedBytes(snapshot)));
        return snapshot;
    }

    /// <summary>The PeerId of the key the snapshot names as its host's, or null when it names none.</summary>
    public static PeerId? SignerOf(WeightsSnapshot snapshot) => snapshot.HostKey.IsEmpty ? null : PeerId.FromPublicKey(snapshot.HostKey.Span);

    /// <summary>
    /// Why the snapshot cannot be taken as weights of <paramref name="uid"/> with <paramref name="schemaHash"/>,
    /// or null when it can: a signature by its host's key over these fields, a plausible SHA-256 and size, and
    /// the signer among <paramref name="trustedSigners"/> when that list is not empty.
    /// </summary>
    public static string? Problem(WeightsSnapshot snapshot, string uid, string schemaHash, IReadOnlyCollection<string>? trustedSigners = null)
    {
        if (snapshot.Uid != uid) return $"it is a snapshot of {snapshot.Uid}, not {uid}";
        if (snapshot.SchemaHash != schemaHash) return $"its schema hash {snapshot.SchemaHash} is not {schemaHash}";
        if (snapshot.Sha256.Length != 64 || !snapshot.Sha256.All(char.IsAsciiHexDigitLower) || snapshot.Size > long.MaxValue || snapshot.BaseUpdates < 0 || snapshot.BaseUpdates > snapshot.Updates)
            return "it needs a lower-case hex SHA-256, a size a file can have and update counts of 0 or more, its base not above its total";
        if (snapshot.AveragedFrom.Count > MaxContributions) return $"it lists {snapshot.AveragedFrom.Count} contributions; at most {MaxContributions}";
        if (SignerOf(snapshot) is not { } signer) return "it names no host key";
        if (snapshot.Signature.IsEmpty || !PeerIdentity.Verify(snapshot.HostKey.Span, SignedBytes(snapshot), snapshot.Signature.Span))
            return $"its signature does not verify against the key of {signer}";
        if (trustedSigners is { Count: > 0 } && !trustedSigners.Contains(signer.ToString()))
            return $"it is signed by {signer}, whom this node does not take weights from (Weights:AdoptFrom)";
        return null;
    }

    private static byte[] SignedBytes(WeightsSnapshot s)
    {
        using var bytes = new MemoryStream();
        bytes.Write(Domain);
        Text(bytes, s.Uid);
        Text(bytes, s.Sha256);
        Text(bytes, s.SchemaHash);
        Span<byte> number = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(number, s.Updates);
        bytes.Write(number);
        BinaryPrimitives.WriteUInt64LittleEndian(number, s.Size);
        bytes.Write(number);
        BinaryPrimitives.WriteInt64LittleEndian(number, s.CreatedUnixMs);
        bytes.Write(number);
        BinaryPrimitives.WriteInt64LittleEndian(number, s.BaseUpdates);
        bytes.Write(number);
        foreach (var c in s.AveragedFrom)
        {
            Text(bytes, c.Host);
            Text(bytes, c.Sha256);
        }
        return bytes.ToArray();
    }

    private static void Text(Stream into, string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
        into.Write(length);
        into.Write(utf8);
    }
}
