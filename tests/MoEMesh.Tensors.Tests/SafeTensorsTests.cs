using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MoEMesh.Tensors.Serialization;
using MoEMesh.Testing;

namespace MoEMesh.Tensors.Tests;

public class SafeTensorsTests
{
    private static byte[] Write(IEnumerable<SafeTensorEntry> entries, Dictionary<string, string>? metadata = null)
    {
        using var stream = new MemoryStream();
        SafeTensorsFile.Write(stream, entries, metadata);
        return stream.ToArray();
    }

    private static SafeTensorsContent Read(byte[] bytes) => SafeTensorsFile.Read(new MemoryStream(bytes));

    [Theory]
    [InlineData(DType.F32, 0.0)]
    [InlineData(DType.F16, 1e-3)]
    [InlineData(DType.BF16, 8e-3)]
    public void RoundTrip_EachDType_WithinItsPrecision(DType dtype, double relativeError)
    {
        using var a = GradientCheck.Random([3, 4], 1);
        using var b = GradientCheck.Random([5], 2, scale: 100f);
        var bytes = Write([new("layer.weight", a, dtype), new("layer.bias", b, dtype)], new() { ["step"] = "7" });
        using var content = Read(bytes);
        Assert.Equal("7", content.Metadata["step"]);
        Assert.Equal(dtype, content.StoredTypes["layer.weight"]);
        foreach (var (name, original) in new[] { ("layer.weight", a), ("layer.bias", b) })
        {
            var read = content.Get(name);
            Assert.Equal(original.Shape, read.Shape);
            for (int i = 0; i < original.Length; i++)
                Assert.True(Math.Abs(read.Span[i] - original.Span[i]) <= relativeError * Math.Abs(original.Span[i]),
                    $"{name}[{i}]: {read.Span[i]} vs {original.Span[i]}");
        }
    }

    [Fact]
    public void Write_Bytes_FollowTheFormat()
    {
        using var t = Tensor.FromArray([1f, -2f, 0.5f], [1, 3]);
        using var h = Tensor.FromArray([1.5f, -0.25f], [2]);
        var bytes = Write([new("w", t), new("h", h, DType.BF16)], new() { ["format"] = "pt" });

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, (8 + headerLength) % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.EndsWith("}", header.TrimEnd(' '));
        Assert.True(header.Length - header.TrimEnd(' ').Length < 8, "padding is fewer than 8 spaces");
        using var json = JsonDocument.Parse(header);
        var root = json.RootElement;
        Assert.Equal("pt", root.GetProperty("__metadata__").GetProperty("format").GetString());
        Assert.Equal("F32", root.GetProperty("w").GetProperty("dtype").GetString());
        Assert.Equal([1, 3], root.GetProperty("w").GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([0L, 12L], root.GetProperty("w").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal("BF16", root.GetProperty("h").GetProperty("dtype").GetString());
        Assert.Equal([12L, 16L], root.GetProperty("h").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()));

        var data = bytes.AsSpan(8 + (int)headerLength);
        Assert.Equal(16, data.Length);
        Assert.Equal(-2f, BinaryPrimitives.ReadSingleLittleEndian(data[4..]));
        // bfloat16 of 1.5 is 0x3FC0 and of -0.25 is 0xBE80, little-endian.
        Assert.Equal(new byte[] { 0xC0, 0x3F, 0x80, 0xBE }, data[12..].ToArray());
    }

    [Fact]
    public void BFloat16_RoundsToNearestEven_AndKeepsNaN()
    {
        Assert.Equal(0x3F80, FloatFormats.ToBFloat16(1f));
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1.
        Assert.Equal(0x3F80, FloatFormats.ToBFloat16(1f + 1f / 256));
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even, 1 + 2^-6.
        Assert.Equal(0x3F82, FloatFormats.ToBFloat16(1f + 3f / 256));
        Assert.True(float.IsNaN(FloatFormats.FromBFloat16(FloatFormats.ToBFloat16(float.NaN))));
        Assert.Equal(float.PositiveInfinity, FloatFormats.FromBFloat16(FloatFormats.ToBFloat16(float.PositiveInfinity)));
    }

    [Fact]
    public void WriteFile_ReplacesAtomically_AndLeavesNoTemporaryFiles()
    {
        var directory = Directory.CreateTempSubdirectory("moemesh-st-").FullName;
        try
        {
            var path = Path.Combine(directory, "w.safetensors");
            using var first = Tensor.FromArray([1f], [1]);
            using var second = Tensor.FromArray([2f, 3f], [2]);
            SafeTensorsFile.WriteFile(path, [new("x", first)]);
            SafeTensorsFile.WriteFile(path, [new("x", second)]);
            using var content = SafeTensorsFile.ReadFile(path);
            Assert.Equal([2f, 3f], content.Get("x").ToArray());
            Assert.Single(Directory.GetFiles(directory));
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    public static TheoryData<string, Func<byte[], byte[]>, string> Corruptions => new()
    {
        { "truncated length", b => b[..5], "header length" },
        { "truncated data", b => b[..^2], "data section" },
        { "trailing bytes", b => [.. b, 0, 0], "data section" },
        { "header too long", b => WithLength(b, 200_000_000), "limit" },
        { "header past end", b => WithLength(b, (ulong)b.Length), "past the end" },
        { "not json", b => WithHeader(b, "{not json"), "not valid JSON" },
        { "unknown dtype", b => WithHeader(b, """{"x":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}}"""), "I64" },
        { "shape size mismatch", b => WithHeader(b, """{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"""), "needs 12 bytes" },
        { "gap", b => WithHeader(b, """{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"""), "starts at byte 4" },
        { "negative dim", b => WithHeader(b, """{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"""), "non-negative" },
        { "no offsets", b => WithHeader(b, """{"x":{"dtype":"F32","shape":[2]}}"""), "data_offsets" },
        { "metadata not strings", b => WithHeader(b, """{"__metadata__":{"a":1},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"""), "must be a string" },
        { "name not UTF-8", b => WithHeader(b, [.. "{\"x"u8, 0xFF, .. "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"u8]), "not valid UTF-8" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Read_CorruptInput_ThrowsInvalidDataNamingTheProblem(string name, Func<byte[], byte[]> corrupt, string expected)
    {
        using var t = Tensor.FromArray([1f, 2f], [2]);
        var bytes = corrupt(Write([new("x", t)]));
        var e = Assert.Throws<InvalidDataException>(() => Read(bytes));
        Assert.True(e.Message.Contains(expected, StringComparison.Ordinal), $"{name}: '{e.Message}' should mention '{expected}'");
    }

    private static byte[] WithLength(byte[] bytes, ulong length)
    {
        var copy = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy, length);
        return copy;
    }

    /// <summary>Replaces the header, keeping the 8 data bytes of a two-float tensor.</summary>
    private static byte[] WithHeader(byte[] bytes, string header) => WithHeader(bytes, Encoding.UTF8.GetBytes(header));

    /// <summary>Replaces the header with these bytes, keeping the 8 data bytes of a two-float tensor.</summary>
    private static byte[] WithHeader(byte[] bytes, byte[] headerBytes)
    {
        var data = bytes[^8..];
        var result = new byte[8 + headerBytes.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)headerBytes.Length);
        headerBytes.CopyTo(result, 8);
        data.CopyTo(result, 8 + headerBytes.Length);
        return result;
    }
}
