using System.Buffers.Binary;
using System.Text;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;

namespace MoEMesh.Routing.Models;

/// <summary>
/// Signed model publications: a publisher signs (name, version, SHA-256, size) with its node key, and a
/// holder of the name accepts newer versions only from the publisher of the version it holds, so nobody
/// else can replace a published model. What is signed is written on <see cref="ModelPublication"/> in
/// src/Protocol/Protos/expert.proto.
/// </summary>
public static class ModelPublications
{
    private static readonly byte[] Domain = "moemesh-model-publication-v1\0"u8.ToArray();

    /// <summary>A publication of the file with <paramref name="sha256"/> and <paramref name="size"/>, signed by <paramref name="publisher"/>.</summary>
    public static ModelPublication Sign(string name, long version, string sha256, ulong size, PeerIdentity publisher)
    {
        var publication = new ModelPublication { Name = name, Version = version, Sha256 = sha256, Size = size };
        publication.PublisherKey = Google.Protobuf.ByteString.CopyFrom(publisher.PublicKey);
        publication.Signature = Google.Protobuf.ByteString.CopyFrom(publisher.Sign(SignedBytes(publication)));
        return publication;
    }

    /// <summary>Whether the publication carries a signature.</summary>
    public static bool IsSigned(ModelPublication publication) => !publication.Signature.IsEmpty;

    /// <summary>Whether the signature is the publisher key's over these fields.</summary>
    public static bool Verify(ModelPublication publication) =>
        IsSigned(publication) && PeerIdentity.Verify(publication.PublisherKey.Span, SignedBytes(publication), publication.Signature.Span);

    /// <summary>The publisher's PeerId, or null for an unsigned publication.</summary>
    public static PeerId? PublisherOf(ModelPublication publication) => publication.PublisherKey.IsEmpty ? null : PeerId.FromPublicKey(publication.PublisherKey.Span);

    /// <summary>
    /// The holders whose copies a node that holds no copy may use, newest version first. Holders whose
    /// publication's signature does not verify are dropped. Of the publishers left (unsigned copies count
    /// as one more), the one whose versions the most holders hold is taken, ties going to the one with the
    /// newest version: a peer that announces a higher version of a name under its own key does not win the
    /// name unless more holders hold its copies than the publisher's.
    /// </summary>
    public static IReadOnlyList<ModelHostInfo> Trusted(IEnumerable<ModelHostInfo> holders)
    {
        var verified = holders.Where(h => !IsSigned(h.Publication) || Verify(h.Publication)).ToArray();
        var chosen = verified.GroupBy(h => PublisherOf(h.Publication))
            .OrderByDescending(g => g.Select(h => h.Host).Distinct().Count())
            .ThenByDescending(g => g.Max(h => h.Version))
            .FirstOrDefault();
        return chosen is null ? [] : chosen.OrderByDescending(h => h.Version).ToArray();
    }

    /// <summary>Whether two publications come from the same publisher (both unsigned counts as the same).</summary>
    public static bool SamePublisher(ModelPublication a, ModelPublication b) => PublisherOf(a) == PublisherOf(b);

    private static byte[] SignedBytes(ModelPublication p)
    {
        var name = Encoding.UTF8.GetBytes(p.Name);
        var sha = Encoding.UTF8.GetBytes(p.Sha256);
        var bytes = new byte[Domain.Length + 4 + name.Length + 8 + 4 + sha.Length + 8];
        var span = bytes.AsSpan();
        Domain.CopyTo(span);
        span = span[Domain.Length..];
        BinaryPrimitives.WriteInt32LittleEndian(span, name.Length);
        name.CopyTo(span[4..]);
        span = span[(4 + name.Length)..];
        BinaryPrimitives.WriteInt64LittleEndian(span, p.Version);
        BinaryPrimitives.WriteInt32LittleEndian(span[8..], sha.Length);
        sha.CopyTo(span[12..]);
        BinaryPrimitives.WriteUInt64LittleEndian(span[(12 + sha.Length)..], p.Size);
        return bytes;
    }
}
