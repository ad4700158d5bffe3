using System.Globalization;
using System.Text.Json;
using MoEMesh.Routing.Models;
using Spectre.Console;

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
        var table = new Table().Border(TableBorder.Rounded).AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        void Row(string measure, FormattableString value) => table.AddRow(Markup.Escape(measure), Markup.Escape(value.ToString(c)));
        Row("texts", $"{r.Samples}{(r.Failed > 0 ? $" ({r.Failed} got no answer)" : "")}");
        Row("accuracy", $"{r.Accuracy:P2}");
        Row("macro-F1", $"{r.MacroF1:F4}");
        foreach (var (domain, score) in r.Domains) Row($"{domain}: accuracy, macro-F1", $"{score.Accuracy:P2}, {score.MacroF1:F4} of {score.Samples}");
        for (int l = 0; l < r.Layers.Count; l++)
        {
            var layer = r.Layers[l];
            if (layer.Utilisation is not { } utilisation) continue; // a dense layer routes nothing
            Row($"layer {l}: utilisation H(load)/log(E)", $"{utilisation:F3}");
            Row($"layer {l}: experts per text", $"{layer.ExpertsPerSample:F2}");
            if (layer.Specialisation is { } specialisation) Row($"layer {l}: specialisation I(domain;expert)/H(domain)", $"{specialisation:F3}");
            if (layer.TopLoad.Count > 0)
            {
                var busiest = layer.TopLoad.MaxBy(e => e.Value);
                Row($"layer {l}: experts ranked first, busiest", $"{layer.TopLoad.Count}, {busiest.Key} for {busiest.Value}");
            }
        }
        Row("experts per text", $"{r.ExpertsPerSample:F2}");
        Row("fallback rate", $"{r.FallbackRate:P2}");
        Row("MACs per text", $"{r.MacsPerSample:N0}");
        if (r.BytesPerSample is { } bytes) Row("bytes on the wire per text", $"{bytes:N0}");
        AnsiConsole.Write(table);
    }
}
