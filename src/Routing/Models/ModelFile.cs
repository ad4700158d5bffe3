using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Routing.Models;

/// <summary>
/// A trained model as one plain safetensors file. Its tensors are the trunk, gates and head under their
/// hierarchical names (<see cref="ModelWeights"/>); its <c>__metadata__</c> carries everything needed to
/// rebuild and serve it, each value a string (JSON where it is structured):
/// <c>format</c> = <see cref="Format"/>, <c>format_version</c> = <see cref="FormatVersion"/>, <c>name</c>,
/// <c>version</c> (Unix ms when it was saved; a newer version of a name replaces an older one),
/// <c>trunk</c>, <c>layers</c>, <c>head</c>, <c>data</c> and <c>training</c> (<see cref="ModelSpec"/> in
/// snake_case JSON). Loading refuses, naming the problem, a file of another format version, metadata
/// that does not parse, and a missing or misshapen tensor.
/// </summary>
public static class ModelFile
{
    /// <summary>The value of the <c>format</c> metadata key.</summary>
    public const string Format = "moemesh.model";

    /// <summary>The format version this code writes and reads.</summary>
    public const int FormatVersion = 1;

    /// <summary>The extension of model files.</summary>
    public const string Extension = ".safetensors";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
        // The metadata is read by people too: "words+bigrams", not "words\u002Bbigrams".
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// Whether <paramref name="name"/> can name a model: 1 to 64 letters, digits, '.', '_' or '-', starting with
    /// a letter or digit, and not a PeerId (the DHT would then take <c>model:NAME</c> as that peer's own key).
    /// </summary>
    public static bool IsValidName(string? name, out string error)
    {
        error = "";
        if (string.IsNullOrEmpty(name) || name.Length > 64 || !char.IsAsciiLetterOrDigit(name[0]) || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            error = $"'{name}' is not a model name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.";
        else if (Protocol.Identity.PeerId.TryParse(name, out _))
            error = $"'{name}' is not a model name: it reads as a PeerId, which the DHT keeps for that peer's own records.";
        return error.Length == 0;
    }

    /// <summary>The hex SHA-256 of a file: what publications and <c>blob.fetch</c> name it by.</summary>
    public static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
    }

    /// <summary>Writes the model atomically to <paramref name="path"/>.</summary>
    public static void Save(string path, string name, long version, ModelSpec spec, ModelWeights weights)
    {
        if (!IsValidName(name, out var error)) throw new ArgumentException(error, nameof(name));
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["format_version"] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["name"] = name,
            ["version"] = version.ToString(CultureInfo.InvariantCulture),
            ["trunk"] = JsonSerializer.Serialize(spec.Trunk, Json),
            ["layers"] = JsonSerializer.Serialize(spec.Layers, Json),
            ["head"] = JsonSerializer.Serialize(spec.Head, Json),
            ["data"] = JsonSerializer.Serialize(spec.Data, Json),
            ["training"] = JsonSerializer.Serialize(spec.Training, Json),
        };
        SafeTensorsFile.WriteFile(path, weights.Entries(), metadata);
    }

    /// <summary>Reads and checks a model file.</summary>
    /// <exception cref="InvalidDataException">The file is not a loadable model; the message names the file and the problem.</exception>
    public static LoadedModelFile Load(string path)
    {
        try
        {
            using var content = SafeTensorsFile.ReadFile(path);
            var (name, version, spec) = ReadMetadata(content.Metadata);
            return new LoadedModelFile(name, version, spec, ModelWeights.Load(spec, content.Tensors));
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        catch (Exception e) when (e is not (InvalidDataException or IOException or UnauthorizedAccessException or OutOfMemoryException))
        {
            // Whatever else a crafted file provokes is still a file that does not load, never a crash.
            throw new InvalidDataException($"{path}: the file does not load as a model: {e.Message}", e);
        }
    }

    /// <summary>Name, version and spec from a model file's metadata.</summary>
    /// <exception cref="InvalidDataException">Something is missing, of another format version, or does not parse.</exception>
    public static (string Name, long Version, ModelSpec Spec) ReadMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        string Required(string key) => metadata.TryGetValue(key, out var value)
            ? value
            : throw new InvalidDataException($"the metadata has no '{key}' entry, so this is not a {Format} file of format version {FormatVersion}.");
        if (Required("format") != Format) throw new InvalidDataException($"the metadata says format '{metadata["format"]}'; a model file says '{Format}'.");
        var formatVersion = Required("format_version");
        if (formatVersion != FormatVersion.ToString(CultureInfo.InvariantCulture))
            throw new InvalidDataException($"the file is of format version {formatVersion}; this moemesh reads format version {FormatVersion}.");
        var name = Required("name");
        if (!IsValidName(name, out var error)) throw new InvalidDataException($"metadata 'name': {error}");
        if (!long.TryParse(Required("version"), NumberStyles.None, CultureInfo.InvariantCulture, out long version))
            throw new InvalidDataException($"metadata 'version' is '{metadata["version"]}', not a whole number.");
        var layers = Parse<LayerSpec[]>("layers", Required("layers"));
        if (layers.Any(l => l is null || l.Sizes is null)) throw new InvalidDataException("metadata 'layers' holds a null layer or a layer without sizes.");
        var head = Parse<HeadSpec>("head", Required("head"));
        if (head.Labels is null || head.Labels.Any(l => l is null)) throw new InvalidDataException("metadata 'head' holds no labels or a null label.");
        var spec = new ModelSpec(
            Parse<TrunkSpec>("trunk", Required("trunk")),
            layers,
            head,
            Parse<DataColumns>("data", Required("data")),
            metadata.TryGetValue("training", out var training) ? ParseOrNull<TrainingSummary>("training", training) : null);
        try
        {
            spec.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"the metadata describes a model that cannot work: {e.Message}", e);
        }
        return (name, version, spec);
    }

    private static T Parse<T>(string key, string json) where T : class => ParseOrNull<T>(key, json) ?? throw new InvalidDataException($"metadata '{key}' is null.");

    private static T? ParseOrNull<T>(string key, string json) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"metadata '{key}' does not parse as {typeof(T).Name.TrimEnd('[', ']')}: {e.Message}", e);
        }
    }
}

/// <summary>A model file read and checked: its name, version, spec and weights.</summary>
public sealed record LoadedModelFile(string Name, long Version, ModelSpec Spec, ModelWeights Weights);
