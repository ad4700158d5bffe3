using System.Globalization;
using System.Text.Json;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Cli;

/// <summary>An evaluation report as a table, or as JSON.</summary>
internal static class EvaluationView
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string ToJson(EvaluationReport report) => JsonSerializer.Serialize(report, Json);

    public static void Print(EvaluationReport r)
    {
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"  texts                {r.Samples}{(r.Failed > 0 ? $" ({r.Failed} got no answer)" : "")}"));
        Console.WriteLine(string.Create(c, $"  accuracy             {r.Accuracy:P2}"));
        Console.WriteLine(string.Create(c, $"  macro-F1             {r.MacroF1:F4}"));
        foreach (var (domain, score) in r.Domains)
            Console.WriteLine(string.Create(c, $"  accuracy {domain,-11} {score.Accuracy:P2} of {score.Samples}"));
        for (int l = 0; l < r.Layers.Count; l++)
            Console.WriteLine(string.Create(c, $"  layer {l}: utilisation U = H(load)/log(E) {r.Layers[l].Utilisation:F3}, experts per text {r.Layers[l].ExpertsPerSample:F2}"));
        Console.WriteLine(string.Create(c, $"  experts per text     {r.ExpertsPerSample:F2}"));
        Console.WriteLine(string.Create(c, $"  fallback rate        {r.FallbackRate:P2}"));
        Console.WriteLine(string.Create(c, $"  MACs per text        {r.MacsPerSample:N0}"));
        if (r.BytesPerSample is { } bytes) Console.WriteLine(string.Create(c, $"  bytes on the wire    {bytes:N0} per text"));
    }
}
