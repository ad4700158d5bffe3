using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Ids;

/// <summary>
/// A 256-bit Kademlia id: a node's is the SHA-256 of its public key (the hash inside its
/// <see cref="PeerId"/>); a key's is the SHA-256 of its UTF-8 bytes. Distance is XOR, compared as a
/// big-endian 256-bit number. Four words keep distance comparisons free of allocation.
/// </summary>
public readonly struct NodeId : IEquatable<NodeId>, IComparable<NodeId>
{
    /// <summary>Bits in an id.</summary>
    public const int Bits = 256;

    private readonly ulong _w0, _w1, _w2, _w3;

    private NodeId(ulong w0, ulong w1, ulong w2, ulong w3) => (_w0, _w1, _w2, _w3) = (w0, w1, w2, w3);

    /// <summary>An id from 32 big-endian bytes.</summary>
    public static NodeId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != 32) throw new ArgumentException($"A node id has 32 bytes; got {bytes.Length}.", nameof(bytes));
        return new NodeId(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]), BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]));
    }

    /// <summary>The id of a peer: the hash its PeerId carries.</summary>
    public static NodeId Of(PeerId peer) => FromBytes(peer.Hash);

    /// <summary>The id under which <paramref name="key"/> is stored.</summary>
    public static NodeId ForKey(string key) => FromBytes(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>A uniformly random id.</summary>
    public static NodeId Random(Random random)
    {
        Span<byte> bytes = stackalloc byte[32];
        random.NextBytes(bytes);
        return FromBytes(bytes);
    }

    /// <summary>
    /// A random id that shares exactly the first <paramref name="prefixLength"/> bits with
    /// <paramref name="origin"/> and differs at the next (for refreshing the bucket at that depth), or
    /// shares at least that many when <paramref name="differAtNext"/> is false.
    /// </summary>
    public static NodeId RandomWithPrefix(NodeId origin, int prefixLength, bool differAtNext, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, Bits);
        var r = Random(random);
        // Keep the prefix from origin, the rest random; then set the next bit relative to origin.
        var mask = Mask(prefixLength);
        var id = Or(And(origin, mask), And(r, Not(mask)));
        if (differAtNext && prefixLength < Bits) id = id.WithBit(prefixLength, !origin.Bit(prefixLength));
        return id;
    }

    /// <summary>The XOR distance to <paramref name="other"/>.</summary>
    public NodeId DistanceTo(NodeId other) => Xor(this, other);

    /// <summary>Whether this id is strictly closer to <paramref name="target"/> than <paramref name="other"/> is.</summary>
    public bool IsCloserTo(NodeId target, NodeId other) => Xor(this, target).CompareTo(Xor(other, target)) < 0;

    /// <summary>Number of leading bits this id shares with <paramref name="other"/> (256 when equal).</summary>
    public int CommonPrefixLength(NodeId other)
    {
        var d = Xor(this, other);
        if (d._w0 != 0) return BitOperations.LeadingZeroCount(d._w0);
        if (d._w1 != 0) return 64 + BitOperations.LeadingZeroCount(d._w1);
        if (d._w2 != 0) return 128 + BitOperations.LeadingZeroCount(d._w2);
        if (d._w3 != 0) return 192 + BitOperations.LeadingZeroCount(d._w3);
        return Bits;
    }

    /// <summary>Bit <paramref name="index"/>, counted from the most significant.</summary>
    public bool Bit(int index) => ((Word(index / 64) >> (63 - index % 64)) & 1) != 0;

    /// <summary>The 32 big-endian bytes.</summary>
    public byte[] ToBytes()
    {
        var bytes = new byte[32];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, _w0);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), _w1);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(16), _w2);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(24), _w3);
        return bytes;
    }

    /// <inheritdoc />
    public int CompareTo(NodeId other)
    {
        int c = _w0.CompareTo(other._w0);
        if (c != 0) return c;
        c = _w1.CompareTo(other._w1);
        if (c != 0) return c;
        c = _w2.CompareTo(other._w2);
        return c != 0 ? c : _w3.CompareTo(other._w3);
    }

    /// <inheritdoc />
    public bool Equals(NodeId other) => _w0 == other._w0 && _w1 == other._w1 && _w2 == other._w2 && _w3 == other._w3;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is NodeId other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_w0, _w3);

    /// <summary>The first 16 hex digits, enough to tell ids apart in logs.</summary>
    public override string ToString() => _w0.ToString("x16");

    /// <summary>Equality.</summary>
    public static bool operator ==(NodeId a, NodeId b) => a.Equals(b);

    /// <summary>Inequality.</summary>
    public static bool operator !=(NodeId a, NodeId b) => !a.Equals(b);

    private static NodeId Xor(NodeId a, NodeId b) => new(a._w0 ^ b._w0, a._w1 ^ b._w1, a._w2 ^ b._w2, a._w3 ^ b._w3);

    private static NodeId And(NodeId a, NodeId b) => new(a._w0 & b._w0, a._w1 & b._w1, a._w2 & b._w2, a._w3 & b._w3);

    private static NodeId Or(NodeId a, NodeId b) => new(a._w0 | b._w0, a._w1 | b._w1, a._w2 | b._w2, a._w3 | b._w3);

    private static NodeId Not(NodeId a) => new(~a._w0, ~a._w1, ~a._w2, ~a._w3);

    private ulong Word(int i) => i switch { 0 => _w0, 1 => _w1, 2 => _w2, _ => _w3 };

    private static NodeId Mask(int prefixLength)
    {
        Span<ulong> w = stackalloc ulong[4];
        for (int i = 0; i < 4; i++)
        {
            int bits = Math.Clamp(prefixLength - 64 * i, 0, 64);
            w[i] = bits == 0 ? 0 : bits == 64 ? ulong.MaxValue : ulong.MaxValue << (64 - bits);
        }
        return new NodeId(w[0], w[1], w[2], w[3]);
    }

    private NodeId WithBit(int index, bool value)
    {
        Span<ulong> w = [_w0, _w1, _w2, _w3];
        ulong bit = 1UL << (63 - index % 64);
        w[index / 64] = value ? w[index / 64] | bit : w[index / 64] & ~bit;
        return new NodeId(w[0], w[1], w[2], w[3]);
    }
}
