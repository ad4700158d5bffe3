using System.Numerics;

namespace MoEMesh.Protocol.Identity;

/// <summary>Base58 with the Bitcoin alphabet (no 0, O, I, l), as libp2p and IPFS print peer ids.</summary>
public static class Base58
{
    private const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    /// <summary>Encodes bytes; leading zero bytes become leading '1's.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        int zeros = 0;
        while (zeros < bytes.Length && bytes[zeros] == 0) zeros++;
        var value = new BigInteger(bytes, isUnsigned: true, isBigEndian: true);
        var digits = new List<char>();
        while (value > 0)
        {
            value = BigInteger.DivRem(value, 58, out var remainder);
            digits.Add(Alphabet[(int)remainder]);
        }
        digits.AddRange(Enumerable.Repeat('1', zeros));
        digits.Reverse();
        return new string(digits.ToArray());
    }

    /// <summary>Decodes a base58 string; false when a character is outside the alphabet.</summary>
    public static bool TryDecode(string text, out byte[] bytes)
    {
        bytes = [];
        BigInteger value = 0;
        foreach (char c in text)
        {
            int digit = Alphabet.IndexOf(c);
            if (digit < 0) return false;
            value = value * 58 + digit;
        }
        int zeros = text.TakeWhile(c => c == '1').Count();
        var body = value.IsZero ? [] : value.ToByteArray(isUnsigned: true, isBigEndian: true);
        bytes = new byte[zeros + body.Length];
        body.CopyTo(bytes, zeros);
        return true;
    }
}
