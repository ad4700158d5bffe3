using System.Text.Json;

namespace MoEMesh.Node.Study;

/// <summary>What one trained model measured on the test data, read from the eval.json <c>train</c> writes.</summary>
internal sealed record StudyResult(string Config, ulong Seed, double Accuracy, double MacroF1, double? Utilisation, double? Specialisation, int ExpertsRankedFirst, double ExpertsPerText,
    double MacsPerText, double? BytesPerText, double FallbackRate, IReadOnlyDictionary<string, double> DomainF1, double Unanswered)
{
    /// <summary>The result in <paramref name="evalJson"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not an evaluation report.</exception>
    public static StudyResult Read(string config, ulong seed, string evalJson)
    {
        try
        {
            using var report = JsonDocument.Parse(File.ReadAllBytes(evalJson));
            var root = report.RootElement;
            double? Number(JsonElement e) => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : null;
            var layer = root.GetProperty("layers").EnumerateArray().FirstOrDefault(l => Number(l.GetProperty("utilisation")) is not null);
            return new StudyResult(config, seed,
                root.GetProperty("accuracy").GetDouble(),
                root.GetProperty("macro_f1").GetDouble(),
                layer.ValueKind == JsonValueKind.Object ? Number(layer.GetProperty("utilisation")) : null,
                layer.ValueKind == JsonValueKind.Object ? Number(layer.GetProperty("specialisation")) : null,
                layer.ValueKind == JsonValueKind.Object ? layer.GetProperty("top_load").EnumerateObject().Count() : 0,
                root.GetProperty("experts_per_sample").GetDouble(),
                root.GetProperty("macs_per_sample").GetDouble(),
                Number(root.GetProperty("bytes_per_sample")),
                root.GetProperty("fallback_rate").GetDouble(),
                root.GetProperty("domains").EnumerateObject().ToDictionary(d => d.Name, d => d.Value.GetProperty("macro_f1").GetDouble(), StringComparer.Ordinal),
                (double)root.GetProperty("failed").GetInt32() / Math.Max(1, root.GetProperty("samples").GetInt32()));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IOException)
        {
            throw new InvalidDataException($"{evalJson} is not an evaluation report ({e.Message}).", e);
        }
    }
}
