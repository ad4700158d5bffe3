using System.Security.Cryptography;
using System.Text;
using MoEMesh.Dht.Ids;

namespace MoEMesh.Dht.Tests;

public class NodeIdTests
{
    [Fact]
    public void ForKey_IsTheSha256OfTheUtf8Key()
    {
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes("expert:ffn.3.14"));
        Assert.Equal(expected, NodeId.ForKey("expert:ffn.3.14").ToBytes());
    }

    [Fact]
    public void Distance_IsXor_ComparedAsABigEndianNumber()
    {
        var random = new Random(1);
        for (int i = 0; i < 200; i++)
        {
            var a = NodeId.Random(random);
            var b = NodeId.Random(random);
            var target = NodeId.Random(random);
            var da = new System.Numerics.BigInteger(Xor(a, target), isUnsigned: true, isBigEndian: true);
            var db = new System.Numerics.BigInteger(Xor(b, target), isUnsigned: true, isBigEndian: true);
            Assert.Equal(da.CompareTo(db) < 0, a.IsCloserTo(target, b));
            Assert.Equal(Math.Sign(da.CompareTo(db)), Math.Sign(a.DistanceTo(target).CompareTo(b.DistanceTo(target))));
        }
    }

    [Fact]
    public void CommonPrefixLength_CountsLeadingEqualBits()
    {
        var random = new Random(2);
        var a = NodeId.Random(random);
        Assert.Equal(256, a.CommonPrefixLength(a));
        foreach (int prefix in new[] { 0, 1, 7, 63, 64, 65, 128, 200, 255 })
        {
            var b = NodeId.RandomWithPrefix(a, prefix, differAtNext: true, random);
            Assert.Equal(prefix, a.CommonPrefixLength(b));
            for (int bit = 0; bit < prefix; bit++) Assert.Equal(a.Bit(bit), b.Bit(bit));
            Assert.NotEqual(a.Bit(prefix), b.Bit(prefix));
        }
    }

    [Fact]
    public void FromBytes_WrongLength_SaysSo()
    {
        var e = Assert.Throws<ArgumentException>(() => NodeId.FromBytes(new byte[31]));
        Assert.Contains("32 bytes; got 31", e.Message);
    }

    private static byte[] Xor(NodeId a, NodeId b) => a.ToBytes().Zip(b.ToBytes(), (x, y) => (byte)(x ^ y)).ToArray();
}
