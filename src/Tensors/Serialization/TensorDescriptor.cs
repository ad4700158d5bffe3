using System.Text.Json;

namespace MoEMesh.Tensors.Serialization;

/// <summary>One tensor's entry in a safetensors header, validated.</summary>
internal sealed record TensorDescriptor(string Name, DType DType, TensorShape Shape, long Begin, long End)
{
    public static TensorDescriptor Parse(string name, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw Invalid(name, "its header entry is not an object");
        if (!element.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Invalid(name, "it has no string 'dtype'");
        var dtypeName = dtypeElement.GetString()!;
        if (!FloatFormats.TryParse(dtypeName, out var dtype))
            throw Invalid(name, $"its dtype {dtypeName} is not one MoEMesh reads (F32, F16, BF16)");
        var shape = ReadShape(name, element);
        var (begin, end) = ReadOffsets(name, element);
        long expectedBytes = (long)shape.Length * FloatFormats.SizeOf(dtype);
        if (end - begin != expectedBytes)
            throw Invalid(name, $"shape {shape} of {dtype} needs {expectedBytes} bytes but data_offsets [{begin}, {end}) span {end - begin}");
        return new TensorDescriptor(name, dtype, shape, begin, end);
    }

    private static TensorShape ReadShape(string name, JsonElement element)
    {
        if (!element.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Invalid(name, "it has no 'shape' array");
        var dims = new List<int>();
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int value) || value < 0)
                throw Invalid(name, $"its shape has an entry {d.GetRawText()} that is not a non-negative 32-bit integer");
            dims.Add(value);
        }
        try
        {
            return new TensorShape(dims.ToArray());
        }
        catch (ArgumentException e)
        {
            throw Invalid(name, e.Message);
        }
    }

    private static (long Begin, long End) ReadOffsets(string name, JsonElement element)
    {
        if (!element.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Invalid(name, "it has no 'data_offsets' pair");
        if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Invalid(name, $"its data_offsets {offsets.GetRawText()} are not an ordered pair of non-negative integers");
        return (begin, end);
    }

    private static InvalidDataException Invalid(string name, string why) => new($"safetensors tensor '{name}': {why}.");
}
