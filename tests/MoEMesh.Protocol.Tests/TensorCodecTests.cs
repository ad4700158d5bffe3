using MoEMesh.Protocol.Codec;
using MoEMesh.Protocol.Wire;
using MoEMesh.Tensors;
using MoEMesh.Testing;

namespace MoEMesh.Protocol.Tests;

public class TensorCodecTests
{
    [Theory]
    [InlineData(Compression.None, 0.0)]
    [InlineData(Compression.Float16, 1.0 / 2048)]
    [InlineData(Compression.Bfloat16, 1.0 / 256)]
    public void RoundTrip_FloatFormats_WithinRelativeBound(Compression compression, double relative)
    {
        using var tensor = GradientCheck.Random([5, 300], 1, scale: 3f);
        var (headers, payload) = TensorCodec.Encode([(tensor, compression)]);
        using (payload)
        using (var decoded = TensorCodec.Decode(headers[0], payload.Span))
        {
            Assert.Equal(tensor.Shape, decoded.Shape);
            for (int i = 0; i < tensor.Length; i++)
                Assert.True(Math.Abs(decoded.Span[i] - tensor.Span[i]) <= relative * Math.Abs(tensor.Span[i]) + 1e-7,
                    $"{compression}[{i}]: {decoded.Span[i]} vs {tensor.Span[i]}");
        }
    }

    [Fact]
    public void RoundTrip_Blockwise8Bit_ErrorAtMostAbsMaxOver254PerBlock()
    {
        int length = TensorCodec.BlockSize * 2 + 123;
        using var tensor = GradientCheck.Random([length], 2);
        tensor.Span[TensorCodec.BlockSize + 5] = 40f; // one block with a large outlier
        var (headers, payload) = TensorCodec.Encode([(tensor, Compression.Blockwise8Bit)]);
        Assert.Equal(length + 3 * 4, payload.Length);
        using (payload)
        using (var decoded = TensorCodec.Decode(headers[0], payload.Span))
        {
            for (int start = 0; start < length; start += TensorCodec.BlockSize)
            {
                var block = tensor.Span.Slice(start, Math.Min(TensorCodec.BlockSize, length - start));
                float absMax = block.ToArray().Max(Math.Abs);
                for (int i = 0; i < block.Length; i++)
                    Assert.True(Math.Abs(decoded.Span[start + i] - block[i]) <= absMax / 254f * 1.0001f);
            }
        }
    }

    [Fact]
    public void Encode_SeveralTensors_LaidOutBackToBack()
    {
        using var a = Tensor.FromArray([1f, 2f], [1, 2]);
        using var b = Tensor.FromArray([3f, 4f, 5f], [3]);
        var (headers, payload) = TensorCodec.Encode([(a, Compression.None), (b, Compression.Float16)]);
        using (payload)
        {
            Assert.Equal(8UL, headers[1].Offset);
            Assert.Equal(6UL, headers[1].Length);
            using var decoded = TensorCodec.Decode(headers[1], payload.Span);
            Assert.Equal([3f, 4f, 5f], decoded.ToArray());
        }
    }

    [Fact]
    public void Decode_AllZeroBlock_GivesZeros()
    {
        using var zeros = Tensor.Zeros(10);
        var (headers, payload) = TensorCodec.Encode([(zeros, Compression.Blockwise8Bit)]);
        using (payload)
        using (var decoded = TensorCodec.Decode(headers[0], payload.Span))
            Assert.All(decoded.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Decode_HeaderOutsidePayload_OrWrongLength_Throws()
    {
        var header = new TensorHeader { Compression = Compression.None, Offset = 4, Length = 8 };
        header.Shape.Add(2);
        var outside = Assert.Throws<InvalidDataException>(() => TensorCodec.Decode(header, new byte[10]));
        Assert.Contains("outside", outside.Message);
        header.Length = 12;
        var wrong = Assert.Throws<InvalidDataException>(() => TensorCodec.Decode(header, new byte[100]));
        Assert.Contains("takes 8 bytes", wrong.Message);
        header.Shape[0] = -1;
        Assert.Throws<InvalidDataException>(() => TensorCodec.Decode(header, new byte[100]));
    }
}
