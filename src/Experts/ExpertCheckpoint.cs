using System.Security.Cryptography;
using System.Text.Json;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Experts;

/// <summary>
/// Saves and restores an <see cref="ExpertBackend"/>: weights and optimizer state in a safetensors file,
/// and a small JSON manifest that names that file with its SHA-256 (checked as the file is read, in the same pass). Each save writes a new
/// weights file (numbered by update count) and then atomically replaces the manifest, so a crash at
/// any moment leaves the previous checkpoint intact; older weights files are removed afterwards.
/// </summary>
public static class ExpertCheckpoint
{
    /// <summary>Manifest file name inside an expert's checkpoint directory.</summary>
    public const string ManifestName = "checkpoint.json";
    private const int FormatVersion = 1;
    private const string ParameterPrefix = "param.";
    private const string OptimizerPrefix = "optim.";

    /// <summary>
    /// Writes a checkpoint of <paramref name="backend"/> into <paramref name="directory"/>. Safe while the
    /// expert trains: the weights and optimizer state are copied under <see cref="ExpertBackend.WeightsLock"/>
    /// (so no step lands half-way), and written and hashed after it is released, so training waits for a
    /// memory copy, not for the disk. Saves of one expert run one at a time.
    /// </summary>
    public static void Save(ExpertBackend backend, string directory)
    {
        lock (backend.CheckpointLock)
        {
            using var snapshot = Snapshot(backend);
            snapshot.WriteTo(directory);
        }
    }

    /// <summary>A consistent copy of <paramref name="backend"/>'s weights and optimizer state, taken under its weights lock.</summary>
    public static CheckpointSnapshot Snapshot(ExpertBackend backend)
    {
        lock (backend.WeightsLock)
        {
            var tensors = backend.Expert.Parameters.Select(p => new SafeTensorEntry(ParameterPrefix + p.Name, p.Value.Clone()))
                .Concat(backend.Optimizer.State.Select(s => new SafeTensorEntry(OptimizerPrefix + s.Key, s.Value.Clone()))).ToArray();
            return new CheckpointSnapshot(backend, backend.UpdateCount, backend.Optimizer.StepCount, backend.Lineage, tensors);
        }
    }

    /// <summary>A copy of an expert's weights and optimizer state at one update; written outside any lock.</summary>
    public sealed class CheckpointSnapshot : IDisposable
    {
        private readonly ExpertBackend _backend;
        private readonly SafeTensorEntry[] _tensors;

        private readonly long _optimizerSteps;
        private readonly Weights.WeightsLineage _lineage;

        internal CheckpointSnapshot(ExpertBackend backend, long updateCount, long optimizerSteps, Weights.WeightsLineage lineage, SafeTensorEntry[] tensors)
        {
            _backend = backend;
            UpdateCount = updateCount;
            _optimizerSteps = optimizerSteps;
            _lineage = lineage;
            _tensors = tensors;
        }

        /// <summary>The update the copy was taken at.</summary>
        public long UpdateCount { get; }

        /// <summary>Writes the copy as a new weights file, then atomically replaces the manifest, then removes older weights files.</summary>
        public void WriteTo(string directory)
        {
            Directory.CreateDirectory(directory);
            var weightsName = $"weights.{UpdateCount:D10}.safetensors";
            var weightsPath = Path.Combine(directory, weightsName);
            SafeTensorsFile.WriteFile(weightsPath, _tensors, new Dictionary<string, string>
            {
                ["expert"] = _backend.Name,
                ["update_count"] = UpdateCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
            long parameterBytes = _tensors.Where(t => IsParameter(t.Name)).Sum(t => (long)t.Tensor.Length * sizeof(float));
            var (whole, parameters, prefix) = Hashes(weightsPath, parameterBytes);
            var manifest = new CheckpointManifest(FormatVersion, _backend.Name, _backend.Spec, _backend.Schema.ToString(),
                _backend.Optimizer.Name, UpdateCount, weightsName, whole, _backend.Origin, parameters, prefix, _optimizerSteps, _lineage);
            AtomicFile.Write(Path.Combine(directory, ManifestName),
                stream => JsonSerializer.Serialize(stream, manifest, ManifestJson.Default.CheckpointManifest));
            RemoveLeftovers(directory, keep: weightsName); // saves of one expert run one at a time: no other temporary file is in use
        }

        /// <inheritdoc />
        public void Dispose()
        {
            foreach (var t in _tensors) t.Tensor.Dispose();
        }
    }

    /// <summary>
    /// Restores <paramref name="backend"/> from <paramref name="directory"/>; returns false when there is
    /// no checkpoint there yet. What a save cut short by a crash left behind (temporary files, a weights
    /// file the manifest does not name) is removed first.
    /// </summary>
    /// <exception cref="InvalidDataException">The checkpoint is corrupt or belongs to another expert or optimizer; the message says which.</exception>
    public static bool TryRestore(ExpertBackend backend, string directory)
    {
        var manifestPath = Path.Combine(directory, ManifestName);
        if (!File.Exists(manifestPath))
        {
            RemoveLeftovers(directory, keep: null);
            return false;
        }
        var manifest = ReadManifest(manifestPath);
        RemoveLeftovers(directory, keep: manifest.WeightsFile);
        if (manifest.Spec.Canonical() != backend.Spec.Canonical())
            throw new InvalidDataException($"{manifestPath} holds {manifest.Expert} saved with {string.Join(" and ", Differences(manifest.Spec, backend.Spec))}.");
        if (manifest.Optimizer != backend.Optimizer.Name)
            throw new InvalidDataException($"{manifestPath} was saved with optimizer {manifest.Optimizer}; {backend.Name} is configured with {backend.Optimizer.Name}.");
        var weightsPath = Path.Combine(directory, manifest.WeightsFile);
        if (!File.Exists(weightsPath))
            throw new InvalidDataException($"{manifestPath} names {manifest.WeightsFile}, which is missing.");
        // The file is verified first (checkpoints that hash their parameters apart, up to the end of the
        // parameters, which is all that is read now; older ones, whole), then read straight into the expert's
        // parameters: no copy, no second allocation, and a damaged file leaves them as they were.
        if (manifest.ParametersSha256 is { } parametersSha256) Verify(weightsPath, parametersSha256, manifest.ParametersBytes);
        else Verify(weightsPath, manifest.WeightsSha256, length: null);
        var parameters = backend.Expert.Parameters.ToDictionary(p => ParameterPrefix + p.Name, p => p.Value, StringComparer.Ordinal);
        IReadOnlyDictionary<string, TensorShape> stateShapes;
        try
        {
            using var file = new FileStream(weightsPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            using var content = SafeTensorsFile.Read(file, IsParameter, parameters.GetValueOrDefault, stopAfterLastKept: true, required: parameters.Keys);
            stateShapes = content.Skipped.Where(s => IsOptimizerState(s.Key)).ToDictionary(s => s.Key[OptimizerPrefix.Length..], s => s.Value, StringComparer.Ordinal);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{weightsPath}: {e.Message}", e);
        }
        // The optimizer state (twice the weights, for Adam) is read when the expert first trains or is saved:
        // the same file, verified again, its state tensors taken over rather than copied. Its names and
        // shapes are checked now, from the file's header.
        long steps = manifest.OptimizerSteps ?? manifest.UpdateCount;
        if (steps < 0 || steps > manifest.UpdateCount) throw new InvalidDataException($"{manifestPath} says the optimizer took {steps} of its {manifest.UpdateCount} updates.");
        backend.Optimizer.AdoptLater(steps, stateShapes, () =>
        {
            using var content = ReadVerified(weightsPath, manifest.WeightsSha256, IsOptimizerState);
            return content.Tensors.Keys.ToArray().ToDictionary(k => k[OptimizerPrefix.Length..], content.Take, StringComparer.Ordinal);
        });
        // A label edited by hand into the manifest is announced only when it can be shown as it is.
        backend.Origin ??= manifest.Origin?.Showable();
        backend.SetUpdates(manifest.UpdateCount, manifest.Lineage ?? Weights.WeightsLineage.Initial);
        return true;
    }

    private static bool IsParameter(string name) => name.StartsWith(ParameterPrefix, StringComparison.Ordinal);

    private static bool IsOptimizerState(string name) => name.StartsWith(OptimizerPrefix, StringComparison.Ordinal);

    /// <summary>
    /// The weights file's tensors that <paramref name="keep"/> names, read and hashed in one pass (the others
    /// are hashed and not kept); a file whose SHA-256 is not <paramref name="sha256"/> is refused as corrupt
    /// (also when it is too damaged to parse), and nothing of it is kept.
    /// </summary>
    private static SafeTensorsContent ReadVerified(string path, string sha256, Func<string, bool> keep)
    {
        using var file = new HashingReadStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20));
        SafeTensorsContent content;
        try
        {
            content = SafeTensorsFile.Read(file, keep);
        }
        catch (InvalidDataException e) when (file.HashOfAll() != sha256)
        {
            throw Corrupt(path, e);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        if (file.HashOfAll() == sha256) return content;
        content.Dispose();
        throw Corrupt(path, null);
    }

    /// <summary>Checks the SHA-256 of the first <paramref name="length"/> bytes of a file (all of it when null), reading through a buffer.</summary>
    private static void Verify(string path, string sha256, long? length)
    {
        using var file = new HashingReadStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20));
        ReadThrough(file, length ?? long.MaxValue);
        if (file.HashSoFar() != sha256) throw Corrupt(path, null);
    }

    /// <summary>Reads up to <paramref name="length"/> bytes of <paramref name="stream"/> through a buffer (fewer at its end); returns how many.</summary>
    private static long ReadThrough(Stream stream, long length)
    {
        var buffer = new byte[1 << 20];
        long total = 0;
        for (int read; total < length && (read = stream.Read(buffer, 0, (int)Math.Min(length - total, buffer.Length))) > 0;) total += read;
        return total;
    }

    private static InvalidDataException Corrupt(string path, Exception? cause) => new($"{path} does not match the SHA-256 in {ManifestName}; the file is corrupt.", cause);

    /// <summary>Deletes temporary files and every weights file but <paramref name="keep"/> in <paramref name="directory"/>.</summary>
    private static void RemoveLeftovers(string directory, string? keep)
    {
        if (!Directory.Exists(directory)) return;
        foreach (var file in Directory.EnumerateFiles(directory, ".*.tmp").Concat(Directory.EnumerateFiles(directory, "weights.*.safetensors")))
            if (Path.GetFileName(file) != keep) File.Delete(file);
    }

    /// <summary>How <paramref name="saved"/> differs from <paramref name="configured"/>, field by field ("hidden width 8, not 16").</summary>
    private static IEnumerable<string> Differences(ExpertSpec saved, ExpertSpec configured)
    {
        if (saved.Type != configured.Type) yield return $"type {saved.Type}, not {configured.Type}";
        if (saved.HiddenDim != configured.HiddenDim) yield return $"hidden width {saved.HiddenDim}, not {configured.HiddenDim}";
        if (saved.EffectiveInnerDim != configured.EffectiveInnerDim) yield return $"inner width {saved.EffectiveInnerDim}, not {configured.EffectiveInnerDim}";
        if (saved.Seed != configured.Seed) yield return $"seed {saved.Seed}, not {configured.Seed}";
    }

    private static CheckpointManifest ReadManifest(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            var manifest = JsonSerializer.Deserialize(stream, ManifestJson.Default.CheckpointManifest)
                ?? throw new InvalidDataException($"{path} is empty.");
            if (manifest.FormatVersion != FormatVersion)
                throw new InvalidDataException($"{path} has checkpoint format {manifest.FormatVersion}; this build reads {FormatVersion}.");
            return manifest;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a valid checkpoint manifest: {e.Message}", e);
        }
    }

    /// <summary>
    /// The SHA-256 of a weights file and of its prefix up to the end of its parameters (length header,
    /// JSON header, then <paramref name="parameterBytes"/> of parameters, written first), in one pass.
    /// </summary>
    private static (string Whole, string Parameters, long PrefixBytes) Hashes(string path, long parameterBytes)
    {
        using var stream = new HashingReadStream(File.OpenRead(path));
        Span<byte> length = stackalloc byte[8];
        stream.ReadExactly(length);
        long prefix = 8 + (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(length) + parameterBytes;
        if (ReadThrough(stream, prefix - 8) < prefix - 8) throw new IOException($"{path} ended before its parameters did.");
        string parameters = stream.HashSoFar();
        return (stream.HashOfAll(), parameters, prefix);
    }
}
