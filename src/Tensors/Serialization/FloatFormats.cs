using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace MoEMesh.Tensors.Serialization;

/// <summary>
/// float32 to and from the little-endian bytes of each <see cref="DType"/>. F16 uses the vectorised
/// conversions of <see cref="TensorPrimitives"/>; BF16 rounds to nearest-even and keeps NaN a NaN.
/// </summary>
public static class FloatFormats
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(DType dtype) => dtype switch
    {
        DType.F32 => 4,
        DType.F16 or DType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>The safetensors name of a dtype ("F32", "F16", "BF16").</summary>
    public static string Name(DType dtype) => dtype.ToString();

    /// <summary>Parses a safetensors dtype name; false for names MoEMesh does not read.</summary>
    public static bool TryParse(string name, out DType dtype) =>
        Enum.TryParse(name, ignoreCase: false, out dtype) && Enum.IsDefined(dtype);

    /// <summary>Writes <paramref name="values"/> as little-endian <paramref name="dtype"/>.</summary>
    public static void Encode(ReadOnlySpan<float> values, DType dtype, Span<byte> destination)
    {
        RequireBytes(values.Length, dtype, destination.Length);
        switch (dtype)
        {
            case DType.F32 when BitConverter.IsLittleEndian:
                MemoryMarshal.AsBytes(values).CopyTo(destination);
                break;
            case DType.F16 when BitConverter.IsLittleEndian:
                TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<byte, Half>(destination));
                break;
            default:
                for (int i = 0; i < values.Length; i++) WriteElement(values[i], dtype, destination.Slice(i * SizeOf(dtype)));
                break;
        }
    }

    /// <summary>Reads little-endian <paramref name="dtype"/> bytes into floats.</summary>
    public static void Decode(ReadOnlySpan<byte> source, DType dtype, Span<float> destination)
    {
        RequireBytes(destination.Length, dtype, source.Length);
        switch (dtype)
        {
            case DType.F32 when BitConverter.IsLittleEndian:
                source.CopyTo(MemoryMarshal.AsBytes(destination));
                break;
            case DType.F16 when BitConverter.IsLittleEndian:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
                break;
            default:
                for (int i = 0; i < destination.Length; i++) destination[i] = ReadElement(source.Slice(i * SizeOf(dtype)), dtype);
                break;
        }
    }

    /// <summary>bfloat16 bits of <paramref name="value"/>, rounded to nearest-even.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x0040);
        uint roundingBias = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + roundingBias) >> 16);
    }

    /// <summary>The float whose top 16 bits are <paramref name="bits"/>.</summary>
    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    private static void WriteElement(float value, DType dtype, Span<byte> destination)
    {
        switch (dtype)
        {
            case DType.F32: BinaryPrimitives.WriteSingleLittleEndian(destination, value); break;
            case DType.F16: BinaryPrimitives.WriteHalfLittleEndian(destination, (Half)value); break;
            default: BinaryPrimitives.WriteUInt16LittleEndian(destination, ToBFloat16(value)); break;
        }
    }

    private static float ReadElement(ReadOnlySpan<byte> source, DType dtype) => dtype switch
    {
        DType.F32 => BinaryPrimitives.ReadSingleLittleEndian(source),
        DType.F16 => (float)BinaryPrimitives.ReadHalfLittleEndian(source),
        _ => FromBFloat16(BinaryPrimitives.ReadUInt16LittleEndian(source)),
    };

    private static void RequireBytes(int elements, DType dtype, int bytes)
    {
        if ((long)elements * SizeOf(dtype) != bytes)
            throw new ArgumentException($"{elements} {dtype} elements take {(long)elements * SizeOf(dtype)} bytes; the buffer has {bytes}.");
    }
}
