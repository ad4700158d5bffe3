using System.Buffers.Binary;
using System.Numerics.Tensors;
using MoEMesh.Protocol.Wire;
using MoEMesh.Tensors;
using Tensor = MoEMesh.Tensors.Tensor;
using MoEMesh.Tensors.Serialization;
using WireDType = MoEMesh.Protocol.Wire.DType;

namespace MoEMesh.Protocol.Codec;

/// <summary>
/// Packs float32 tensors into a call's raw payload and back, with a compression chosen per tensor:
/// None (float32), Float16, BFloat16, or Blockwise8Bit (per block of 4096 values a float32 absmax, then
/// int8 values round(x / absmax · 127)). Round-trip error: exact; 2⁻¹¹ relative; 2⁻⁸ relative; at most
/// absmax/254 per block.
/// </summary>
public static class TensorCodec
{
    /// <summary>Values per Blockwise8Bit block.</summary>
    public const int BlockSize = 4096;

    /// <summary>Bytes <paramref name="elements"/> values take with <paramref name="compression"/>.</summary>
    public static long EncodedLength(long elements, Compression compression) => compression switch
    {
        Compression.None => elements * 4,
        Compression.Float16 or Compression.Bfloat16 => elements * 2,
        Compression.Blockwise8Bit => elements + 4 * ((elements + BlockSize - 1) / BlockSize),
        _ => throw new ArgumentOutOfRangeException(nameof(compression), compression, "Unknown compression."),
    };

    /// <summary>
    /// Encodes tensors one after another into one pooled payload and returns where each lies.
    /// </summary>
    public static (TensorHeader[] Headers, PooledBuffer Payload) Encode(IReadOnlyList<(Tensor Tensor, Compression Compression)> tensors, WireDType dtype = WireDType.F32)
    {
        long total = tensors.Sum(t => EncodedLength(t.Tensor.Length, t.Compression));
        if (total > int.MaxValue) throw new ArgumentException($"Tensors of {total} bytes exceed one payload.");
        var payload = PooledBuffer.Rent((int)total);
        var headers = new TensorHeader[tensors.Count];
        int offset = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var (tensor, compression) = tensors[i];
            int length = (int)EncodedLength(tensor.Length, compression);
            Write(tensor.Span, compression, payload.Span.Slice(offset, length));
            var header = new TensorHeader { Dtype = dtype, Compression = compression, Offset = (ulong)offset, Length = (ulong)length };
            foreach (int d in tensor.Shape) header.Shape.Add(d);
            headers[i] = header;
            offset += length;
        }
        return (headers, payload);
    }

    /// <summary>
    /// The shape a header declares, checked (no negative dimension, no overflow) without decoding anything:
    /// a server checks it against what it accepts before it allocates the tensor.
    /// </summary>
    /// <exception cref="InvalidDataException">The shape is not a valid tensor shape.</exception>
    public static TensorShape ShapeOf(TensorHeader header)
    {
        try
        {
            return new TensorShape(header.Shape.ToArray());
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"Tensor header has an invalid shape: {e.Message}", e);
        }
    }

    /// <summary>Decodes one tensor from <paramref name="payload"/>.</summary>
    /// <exception cref="InvalidDataException">The header does not describe bytes inside the payload, or the shape and length disagree.</exception>
    public static Tensor Decode(TensorHeader header, ReadOnlySpan<byte> payload)
    {
        var shape = ShapeOf(header);
        if (!Enum.IsDefined(header.Compression))
            throw new InvalidDataException($"Tensor header names unknown compression {(int)header.Compression}.");
        long expected = EncodedLength(shape.Length, header.Compression);
        if (header.Length != (ulong)expected)
            throw new InvalidDataException($"Tensor of shape {shape} with {header.Compression} compression takes {expected} bytes; the header says {header.Length}.");
        if (header.Offset > (ulong)payload.Length || header.Length > (ulong)payload.Length - header.Offset)
            throw new InvalidDataException($"Tensor bytes [{header.Offset}, {header.Offset + header.Length}) lie outside the {payload.Length}-byte payload.");
        var tensor = Tensor.Uninitialized(shape);
        Read(payload.Slice((int)header.Offset, (int)header.Length), header.Compression, tensor.Span);
        return tensor;
    }

    private static void Write(ReadOnlySpan<float> values, Compression compression, Span<byte> destination)
    {
        switch (compression)
        {
            case Compression.None: FloatFormats.Encode(values, Tensors.Serialization.DType.F32, destination); break;
            case Compression.Float16: FloatFormats.Encode(values, Tensors.Serialization.DType.F16, destination); break;
            case Compression.Bfloat16: FloatFormats.Encode(values, Tensors.Serialization.DType.BF16, destination); break;
            default: WriteBlockwise8Bit(values, destination); break;
        }
    }

    private static void Read(ReadOnlySpan<byte> source, Compression compression, Span<float> values)
    {
        switch (compression)
        {
            case Compression.None: FloatFormats.Decode(source, Tensors.Serialization.DType.F32, values); break;
            case Compression.Float16: FloatFormats.Decode(source, Tensors.Serialization.DType.F16, values); break;
            case Compression.Bfloat16: FloatFormats.Decode(source, Tensors.Serialization.DType.BF16, values); break;
            default: ReadBlockwise8Bit(source, values); break;
        }
    }

    private static void WriteBlockwise8Bit(ReadOnlySpan<float> values, Span<byte> destination)
    {
        Span<float> scaled = stackalloc float[BlockSize];
        int at = 0;
        for (int start = 0; start < values.Length; start += BlockSize)
        {
            var block = values.Slice(start, Math.Min(BlockSize, values.Length - start));
            float absMax = TensorPrimitives.MaxMagnitude(block);
            absMax = float.IsNaN(absMax) ? float.NaN : Math.Abs(absMax);
            BinaryPrimitives.WriteSingleLittleEndian(destination.Slice(at), absMax);
            at += 4;
            var s = scaled[..block.Length];
            TensorPrimitives.Multiply(block, absMax > 0f ? 127f / absMax : 0f, s);
            TensorPrimitives.Round(s, s);
            TensorPrimitives.ConvertSaturating<float, sbyte>(s, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(destination.Slice(at, block.Length)));
            at += block.Length;
        }
    }

    private static void ReadBlockwise8Bit(ReadOnlySpan<byte> source, Span<float> values)
    {
        int at = 0;
        for (int start = 0; start < values.Length; start += BlockSize)
        {
            var block = values.Slice(start, Math.Min(BlockSize, values.Length - start));
            float absMax = BinaryPrimitives.ReadSingleLittleEndian(source.Slice(at));
            at += 4;
            TensorPrimitives.ConvertChecked<sbyte, float>(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(source.Slice(at, block.Length)), block);
            TensorPrimitives.Multiply(block, absMax / 127f, block);
            at += block.Length;
        }
    }
}
