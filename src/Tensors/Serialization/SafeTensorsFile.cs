using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace MoEMesh.Tensors.Serialization;

/// <summary>
/// Reads and writes the safetensors format: an 8-byte little-endian header length N, N bytes of JSON
/// (each tensor's dtype, shape and [begin, end) data offsets, plus an optional string map under
/// "__metadata__"), padded with spaces to a multiple of 8, then the raw little-endian data with no gaps.
/// Files written here load in any safetensors reader; reading checks every rule and names what is wrong.
/// </summary>
public static class SafeTensorsFile
{
    /// <summary>Largest header accepted, as the reference implementation (100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>Writes tensors, in the order given, with optional metadata.</summary>
    public static void Write(Stream stream, IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var entries = tensors.ToArray();
        var header = BuildHeader(entries, metadata);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
        foreach (var entry in entries)
        {
            var values = entry.Tensor.Span;
            if (entry.DType == DType.F32 && BitConverter.IsLittleEndian)
            {
                stream.Write(MemoryMarshal.AsBytes(values));
                continue;
            }
            int size = values.Length * FloatFormats.SizeOf(entry.DType);
            var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, size));
            try
            {
                FloatFormats.Encode(values, entry.DType, buffer.AsSpan(0, size));
                stream.Write(buffer, 0, size);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Writes a file atomically (see <see cref="AtomicFile"/>).</summary>
    public static void WriteFile(string path, IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, stream => Write(stream, tensors, metadata));

    /// <summary>Reads a file.</summary>
    /// <exception cref="InvalidDataException">The file breaks the format; the message says where.</exception>
    public static SafeTensorsContent ReadFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        try
        {
            return Read(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Reads tensors and metadata from a stream positioned at the start of the format; with
    /// <paramref name="keep"/>, only the tensors it names are kept (the others are read past, so a stream
    /// that hashes what it reads still sees every byte). A kept tensor for which <paramref name="into"/>
    /// gives a tensor is read into that one (no allocation, no copy) and listed in
    /// <see cref="SafeTensorsContent.Filled"/> rather than in <see cref="SafeTensorsContent.Tensors"/>; every
    /// destination's shape, and that each <paramref name="required"/> tensor is there, are checked from the
    /// header before any data is read, so a mismatch leaves the destinations as they were. With
    /// <paramref name="stopAfterLastKept"/>, reading ends after the last tensor kept (in file order): the
    /// rest of the stream is left unread.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes break the format, a required tensor is missing, or a tensor's shape is not its destination's; the message says which.</exception>
    public static SafeTensorsContent Read(Stream stream, Func<string, bool>? keep = null, Func<string, Tensor?>? into = null, bool stopAfterLastKept = false,
        IEnumerable<string>? required = null)
    {
        Span<byte> lengthBytes = stackalloc byte[8];
        ReadExactly(stream, lengthBytes, "the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw new InvalidDataException($"safetensors header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit.");
        long? dataLength = stream.CanSeek ? stream.Length - stream.Position - (long)headerLength : null;
        if (dataLength < 0)
            throw new InvalidDataException($"safetensors header length {headerLength} runs past the end of the data.");
        var headerBytes = new byte[headerLength];
        ReadExactly(stream, headerBytes, "the JSON header");
        var (descriptors, metadata) = ParseHeader(headerBytes);
        long expectedEnd = CheckLayout(descriptors);
        if (dataLength is { } available && available != expectedEnd)
            throw new InvalidDataException($"safetensors data section is {available} bytes; the header describes {expectedEnd}.");

        var names = descriptors.Select(d => d.Name).ToHashSet(StringComparer.Ordinal);
        if (required?.FirstOrDefault(name => !names.Contains(name)) is { } missing)
            throw new InvalidDataException($"safetensors file has no tensor '{missing}'.");
        foreach (var d in descriptors)
            if (keep?.Invoke(d.Name) != false && into?.Invoke(d.Name) is { } destination && destination.Shape != d.Shape)
                throw new InvalidDataException($"tensor '{d.Name}' has shape {d.Shape}; expected {destination.Shape}.");

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var types = new Dictionary<string, DType>(StringComparer.Ordinal);
        var skipped = new Dictionary<string, TensorShape>(StringComparer.Ordinal);
        var filled = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            int last = stopAfterLastKept ? descriptors.FindLastIndex(d => keep?.Invoke(d.Name) != false) : descriptors.Count - 1;
            for (int i = 0; i < descriptors.Count; i++)
            {
                var d = descriptors[i];
                if (keep?.Invoke(d.Name) == false)
                {
                    if (i <= last) Skip(stream, d);
                    skipped[d.Name] = d.Shape;
                    continue;
                }
                if (into?.Invoke(d.Name) is { } destination)
                {
                    ReadData(stream, d, destination);
                    filled.Add(d.Name);
                    continue;
                }
                tensors[d.Name] = ReadTensor(stream, d);
                types[d.Name] = d.DType;
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new SafeTensorsContent(tensors, types, metadata, skipped, filled);
    }

    private static byte[] BuildHeader(SafeTensorEntry[] entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in entries)
            {
                if (entry.Name == MetadataKey || !names.Add(entry.Name))
                    throw new ArgumentException($"Tensor name '{entry.Name}' is reserved or used twice.");
                long size = (long)entry.Tensor.Length * FloatFormats.SizeOf(entry.DType);
                json.WriteStartObject(entry.Name);
                json.WriteString("dtype", FloatFormats.Name(entry.DType));
                json.WriteStartArray("shape");
                foreach (int d in entry.Tensor.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + size);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += size;
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static (List<TensorDescriptor>, Dictionary<string, string>) ParseHeader(byte[] headerBytes)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"safetensors header is not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException("safetensors header must be a JSON object.");
            var descriptors = new List<TensorDescriptor>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            try
            {
                foreach (var property in document.RootElement.EnumerateObject())
                {
                    if (property.Name == MetadataKey)
                        ReadMetadata(property.Value, metadata);
                    else
                        descriptors.Add(TensorDescriptor.Parse(property.Name, property.Value));
                }
            }
            catch (InvalidOperationException e)
            {
                // The JSON parser checks the structure, not that every string is valid UTF-8: reading such a name or value throws this.
                throw new InvalidDataException($"safetensors header holds a string that is not valid UTF-8: {e.Message}", e);
            }
            return (descriptors, metadata);
        }
    }

    private static void ReadMetadata(JsonElement element, Dictionary<string, string> metadata)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException("safetensors __metadata__ must be an object of strings.");
        foreach (var entry in element.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"safetensors __metadata__ value '{entry.Name}' must be a string.");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    /// <summary>Sorts descriptors by offset and checks they tile the data section with no gap or overlap.</summary>
    private static long CheckLayout(List<TensorDescriptor> descriptors)
    {
        descriptors.Sort((a, b) => a.Begin.CompareTo(b.Begin));
        long expected = 0;
        foreach (var d in descriptors)
        {
            if (d.Begin != expected)
                throw new InvalidDataException($"tensor '{d.Name}' starts at byte {d.Begin} of the data section; expected {expected} (no gaps or overlaps allowed).");
            expected = d.End;
        }
        return expected;
    }

    private static Tensor ReadTensor(Stream stream, TensorDescriptor d)
    {
        var tensor = Tensor.Uninitialized(d.Shape);
        try
        {
            ReadData(stream, d, tensor);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Reads a tensor's data into <paramref name="tensor"/>, of its shape, converting to float32.</summary>
    private static void ReadData(Stream stream, TensorDescriptor d, Tensor tensor)
    {
        if (d.DType == DType.F32 && BitConverter.IsLittleEndian)
        {
            ReadExactly(stream, MemoryMarshal.AsBytes(tensor.Span), $"the data of tensor '{d.Name}'");
            return;
        }
        int size = checked((int)(d.End - d.Begin));
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, size));
        try
        {
            ReadExactly(stream, buffer.AsSpan(0, size), $"the data of tensor '{d.Name}'");
            FloatFormats.Decode(buffer.AsSpan(0, size), d.DType, tensor.Span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads past a tensor's bytes.</summary>
    private static void Skip(Stream stream, TensorDescriptor d)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (long left = d.End - d.Begin; left > 0;)
            {
                int chunk = (int)Math.Min(left, buffer.Length);
                ReadExactly(stream, buffer.AsSpan(0, chunk), $"the data of tensor '{d.Name}'");
                left -= chunk;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string what)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"safetensors data ends inside {what}.", e);
        }
    }
}
