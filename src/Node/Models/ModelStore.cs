using System.Text.Json;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Models;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Node.Models;

/// <summary>
/// The models this node holds, kept across restarts in the model folder: every <c>&lt;name&gt;.safetensors</c>
/// that loads as a model called <c>name</c>, with the publication its publisher signed in
/// <c>&lt;name&gt;.publication.json</c> beside it (a list: during a swap it names the old and the new
/// version), or none when the operator put the file there. A file is
/// checked once per (size, write time); one that does not load is logged once and not offered. A newer
/// version of a held name is installed only from the publisher of the held one.
/// </summary>
internal sealed partial class ModelStore
{
    private const string PublicationSuffix = ".publication.json";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private readonly string _folder;
    private readonly ModelServingOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<string, (long Size, long Written, HeldModel? Model)> _checked = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public ModelStore(string folder, ModelServingOptions options, ILogger logger)
    {
        _folder = folder;
        _options = options;
        _logger = logger;
        // Uploads and fetches cut short by a stop leave partial files; they are never resumed.
        if (Directory.Exists(IncomingFolder)) Directory.Delete(IncomingFolder, recursive: true);
    }

    /// <summary>Where uploads and fetches are written before they are checked and installed.</summary>
    public string IncomingFolder => Path.Combine(_folder, ".incoming");

    /// <summary>The models held as of the last <see cref="Refresh"/>.</summary>
    public IReadOnlyList<HeldModel> Current { get; private set; } = [];

    /// <summary>The held model called <paramref name="name"/>, or null.</summary>
    public HeldModel? Find(string name) => Current.FirstOrDefault(m => m.Name == name);

    /// <summary>The held model whose file has this SHA-256, or null.</summary>
    public HeldModel? FindBySha(string sha256) => Current.FirstOrDefault(m => m.Publication.Sha256 == sha256);

    /// <summary>Rescans the model folder (a missing folder holds no models).</summary>
    public IReadOnlyList<HeldModel> Refresh()
    {
        lock (_gate)
        {
            var held = new List<HeldModel>();
            if (Directory.Exists(_folder))
            {
                foreach (var path in Directory.EnumerateFiles(_folder, "*" + ModelFile.Extension).Order(StringComparer.Ordinal))
                {
                    if (Path.GetFileName(path).StartsWith('.')) continue;
                    var info = new FileInfo(path);
                    long written = info.LastWriteTimeUtc.Ticks;
                    if (!_checked.TryGetValue(path, out var known) || known.Size != info.Length || known.Written != written)
                        _checked[path] = known = (info.Length, written, Check(path, info.Length));
                    if (known.Model is not null) held.Add(known.Model);
                }
            }
            Current = held;
            return held;
        }
    }

    /// <summary>
    /// Why this node would not install <paramref name="incoming"/> (status and message), or null when it
    /// would; <paramref name="alreadyHeld"/> is set when it holds exactly that version already.
    /// </summary>
    public (StatusCode Status, string Message)? RefusalOf(ModelPublication incoming, out bool alreadyHeld)
    {
        alreadyHeld = false;
        if (!ModelFile.IsValidName(incoming.Name, out var error)) return (StatusCode.InvalidArgument, error);
        if (incoming.Size > (ulong)_options.MaxModelBytes)
            return (StatusCode.ResourceExhausted, $"{incoming.Name} has {incoming.Size} bytes; this node holds models of at most {_options.MaxModelBytes} bytes (MaxModelBytes).");
        if (!ModelPublications.Verify(incoming))
            return (StatusCode.InvalidArgument, $"the publication of {incoming.Name} is not signed, or its signature does not verify against its publisher key.");
        var held = Find(incoming.Name);
        if (held is null)
            return Current.Count >= _options.MaxHeldModels ? (StatusCode.ResourceExhausted, $"this node already holds {Current.Count} models, its maximum (MaxHeldModels).") : null;
        if (!ModelPublications.IsSigned(held.Publication))
            return (StatusCode.InvalidArgument, $"this node holds {incoming.Name} as its operator's own file; it is not replaced from the network.");
        if (ModelPublications.PublisherOf(held.Publication) != ModelPublications.PublisherOf(incoming))
            return (StatusCode.InvalidArgument, $"{incoming.Name} is held here as published by {ModelPublications.PublisherOf(held.Publication)}; only that publisher can publish its new versions.");
        if (incoming.Version < held.Publication.Version)
            return (StatusCode.InvalidArgument, $"version {incoming.Version} of {incoming.Name} is older than the version held here, {held.Publication.Version}.");
        if (incoming.Version == held.Publication.Version)
        {
            if (incoming.Sha256 == held.Publication.Sha256)
            {
                alreadyHeld = true;
                return null;
            }
            return (StatusCode.InvalidArgument, $"version {incoming.Version} of {incoming.Name} is held here with another SHA-256.");
        }
        return null;
    }

    /// <summary>
    /// Installs the file at <paramref name="path"/>, whose bytes have the publication's SHA-256 (the caller
    /// checked it), as the held copy of its model: moved into place with its publication beside it. The
    /// caller may pass the file already <paramref name="loaded"/>; otherwise it is loaded here.
    /// </summary>
    /// <exception cref="ModelRefusedException">The store refuses the publication, or the file is not the model it names.</exception>
    public HeldModel Install(string path, ModelPublication publication, LoadedModelFile? loaded = null)
    {
        lock (_gate)
        {
            Refresh();
            if (RefusalOf(publication, out bool alreadyHeld) is { } refusal) throw new ModelRefusedException(refusal.Status, refusal.Message);
            if (alreadyHeld)
            {
                File.Delete(path);
                return Find(publication.Name)!;
            }
            try
            {
                loaded ??= ModelFile.Load(path);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new ModelRefusedException(StatusCode.InvalidArgument, $"{publication.Name} is not a model file this node can load: {e.Message}");
            }
            if (loaded.Name != publication.Name || loaded.Version != publication.Version)
                throw new ModelRefusedException(StatusCode.InvalidArgument, $"the file holds {loaded.Name} version {loaded.Version}, but the publication names {publication.Name} version {publication.Version}.");
            var target = Path.Combine(_folder, publication.Name + ModelFile.Extension);
            // The publication file names both the new and the held version while the file is swapped, so a
            // crash in between leaves whichever file is in place with its signed publication.
            var sidecar = SidecarOf(target);
            var held = Find(publication.Name)?.Publication;
            WriteSidecar(sidecar, held is null ? [publication] : [publication, held]);
            File.Move(path, target, overwrite: true);
            WriteSidecar(sidecar, [publication]);
            var info = new FileInfo(target);
            var model = new HeldModel(publication.Name, target, publication, loaded.Spec);
            _checked[target] = (info.Length, info.LastWriteTimeUtc.Ticks, model);
            Refresh();
            LogInstalled(_logger, publication.Name, publication.Version, ModelPublications.PublisherOf(publication)?.ToString() ?? "");
            return model;
        }
    }

    /// <summary>Loads the held file <paramref name="path"/> as a model called after it, or null (logged) when it is not one.</summary>
    private HeldModel? Check(string path, long size)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        try
        {
            if (size > _options.MaxModelBytes) throw new InvalidDataException($"it has {size} bytes, more than MaxModelBytes ({_options.MaxModelBytes})");
            var loaded = ModelFile.Load(path);
            if (loaded.Name != name) throw new InvalidDataException($"it holds the model {loaded.Name}; name the file {loaded.Name}{ModelFile.Extension}");
            var sha = ModelFile.Sha256Of(path);
            var publication = ReadPublication(path, name, loaded.Version, sha, size)
                ?? new ModelPublication { Name = name, Version = loaded.Version, Sha256 = sha, Size = (ulong)size };
            return new HeldModel(name, path, publication, loaded.Spec);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogNotAModel(_logger, path, e.Message);
            return null;
        }
    }

    /// <summary>The signed publication beside a held file, when there is one that matches it and verifies.</summary>
    private static ModelPublication? ReadPublication(string path, string name, long version, string sha256, long size)
    {
        var sidecar = SidecarOf(path);
        if (!File.Exists(sidecar)) return null;
        try
        {
            return JsonSerializer.Deserialize<Sidecar[]>(File.ReadAllBytes(sidecar), Json)?.Select(s => s?.ToPublication(name))
                .FirstOrDefault(p => p is not null && p.Version == version && p.Sha256 == sha256 && (long)p.Size == size && ModelPublications.Verify(p));
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            return null;
        }
    }

    private static string SidecarOf(string modelPath) => modelPath[..^ModelFile.Extension.Length] + PublicationSuffix;

    private static void WriteSidecar(string path, IEnumerable<ModelPublication> publications) =>
        AtomicFile.Write(path, s => JsonSerializer.Serialize(s, publications.Select(Sidecar.Of).ToArray(), Json));

    /// <summary>A publication as kept beside the file (the name is the file's).</summary>
    private sealed record Sidecar(long Version, string Sha256, long Size, string PublisherKey, string Signature)
    {
        public static Sidecar Of(ModelPublication p) =>
            new(p.Version, p.Sha256, (long)p.Size, Convert.ToBase64String(p.PublisherKey.Span), Convert.ToBase64String(p.Signature.Span));

        public ModelPublication ToPublication(string name) => new()
        {
            Name = name,
            Version = Version,
            Sha256 = Sha256,
            Size = (ulong)Size,
            PublisherKey = ByteString.FromBase64(PublisherKey),
            Signature = ByteString.FromBase64(Signature),
        };
    }

    [LoggerMessage(EventId = 530, Level = LogLevel.Warning, Message = "Not offering {Path}: {Problem}")]
    private static partial void LogNotAModel(ILogger logger, string path, string problem);

    [LoggerMessage(EventId = 531, Level = LogLevel.Information, Message = "Now holding model {Model} version {Version} (publisher {Publisher})")]
    private static partial void LogInstalled(ILogger logger, string model, long version, string publisher);
}

/// <summary>The store will not hold a model: why, as a status and a message.</summary>
internal sealed class ModelRefusedException(StatusCode status, string message) : Exception(message)
{
    public StatusCode Status { get; } = status;
}
