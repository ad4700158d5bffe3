using System.Text.Json.Serialization;

namespace MoEMesh.Experts;

/// <summary>The JSON manifest of an expert checkpoint.</summary>
internal sealed record CheckpointManifest(
    int FormatVersion,
    string Expert,
    ExpertSpec Spec,
    string Schema,
    string Optimizer,
    long UpdateCount,
    string WeightsFile,
    string WeightsSha256,
    ExpertOrigin? Origin = null);

/// <summary>Source-generated JSON for the manifest (no reflection at run time).</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(CheckpointManifest))]
internal sealed partial class ManifestJson : JsonSerializerContext;
