using System.Text.Json.Serialization;

namespace MoEMesh.Experts;

/// <summary>
/// The JSON manifest of an expert checkpoint. <c>WeightsSha256</c> covers the whole weights file;
/// <c>ParametersSha256</c> (absent from checkpoints written before it) covers its first <c>ParametersBytes</c>
/// bytes, the header and the parameters, which are written first: enough to verify what a restart reads
/// before the expert serves, while the optimizer state after them is verified when it is first needed.
/// <c>OptimizerSteps</c> (absent: all of <c>UpdateCount</c>) are the updates its optimizer took, the rest came with
/// weights adopted or averaged (<c>Lineage</c>).
/// </summary>
internal sealed record CheckpointManifest(
    int FormatVersion,
    string Expert,
    ExpertSpec Spec,
    string Schema,
    string Optimizer,
    long UpdateCount,
    string WeightsFile,
    string WeightsSha256,
    ExpertOrigin? Origin = null,
    string? ParametersSha256 = null,
    long? ParametersBytes = null,
    long? OptimizerSteps = null,
    Weights.WeightsLineage? Lineage = null);

/// <summary>Source-generated JSON for the manifest (no reflection at run time).</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(CheckpointManifest))]
internal sealed partial class ManifestJson : JsonSerializerContext;
