using System.Globalization;
using MoEMesh.Node.Queries;

namespace MoEMesh.Node.Cli;

/// <summary>One text's answer as the query verb prints it: the label, the most probable labels, and the route.</summary>
internal static class QueryView
{
    public static void Print(TextWriter output, string text, QueryResult r)
    {
        var c = CultureInfo.InvariantCulture;
        output.WriteLine();
        output.WriteLine($"{(text.Length > 70 ? text[..67] + "..." : text)}");
        output.WriteLine($"  -> {r.Label}   ({string.Join(", ", r.Probabilities.Select(p => string.Create(c, $"{p.Label} {p.P:F3}")))})");
        foreach (var hop in r.Route)
            output.WriteLine(string.Create(c, $"     layer {hop.Layer}  {hop.Expert,-12} {Short(hop.Host),-14} weight {hop.Weight:F3}  {hop.LatencyMs,7:F1} ms  {hop.Outcome}"));
    }

    /// <summary>The first 12 characters of a PeerId, then an ellipsis.</summary>
    public static string Short(string host) => host.Length > 12 ? host[..12] + "…" : host;
}
