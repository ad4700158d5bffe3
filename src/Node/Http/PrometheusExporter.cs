using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace MoEMesh.Node.Http;

/// <summary>
/// Serves the node's System.Diagnostics.Metrics instruments (meters named MoEMesh.*) in Prometheus text
/// format: counters as totals, histograms as summaries (count and sum), gauges read when scraped. The node's
/// meters come from its host's meter factory, so nodes sharing a process (tests, embedders) each export their
/// own; meters of no factory (the peer protocol's byte counts) are the process's and shown by every node.
/// Names become Prometheus names by replacing dots with underscores: moemesh.dht.lookup.rounds is
/// moemesh_dht_lookup_rounds.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    /// <summary>The content type of the exposition text.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly MeterListener _listener = new();
    private readonly Dictionary<(Instrument Instrument, string Labels), (double Sum, long Count, double Last)> _series = [];

    /// <summary>Starts listening to every MoEMesh meter of <paramref name="meters"/>, and to those of no factory.</summary>
    public PrometheusExporter(IMeterFactory meters)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            var meter = instrument.Meter;
            if (meter.Name.StartsWith("MoEMesh.", StringComparison.Ordinal) && (meter.Scope is null || ReferenceEquals(meter.Scope, meters))) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    /// <summary>The exposition text.</summary>
    public string Render()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        lock (_series)
        {
            foreach (var group in _series.GroupBy(s => s.Key.Instrument).OrderBy(g => g.Key.Name, StringComparer.Ordinal))
            {
                var instrument = group.Key;
                var name = instrument.Name.Replace('.', '_');
                var type = instrument switch
                {
                    Histogram<int> or Histogram<long> or Histogram<double> => "summary",
                    Counter<int> or Counter<long> or Counter<double> => "counter",
                    _ => "gauge",
                };
                if (instrument.Description is { Length: > 0 } help) text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
                text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
                foreach (var ((_, labels), (sum, count, last)) in group.OrderBy(s => s.Key.Labels, StringComparer.Ordinal))
                {
                    if (type == "summary")
                    {
                        Line(text, name + "_count", labels, count);
                        Line(text, name + "_sum", labels, sum);
                    }
                    else
                    {
                        Line(text, name, labels, type == "counter" ? sum : last);
                    }
                }
            }
        }
        return text.ToString();
    }

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = Labels(tags);
        lock (_series)
        {
            var (sum, count, _) = _series.GetValueOrDefault((instrument, labels));
            _series[(instrument, labels)] = (sum + value, count + 1, value);
        }
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0) return "";
        var parts = new List<string>(tags.Length);
        foreach (var tag in tags)
        {
            var value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
            parts.Add($"{tag.Key.Replace('.', '_')}=\"{value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n")}\"");
        }
        parts.Sort(StringComparer.Ordinal);
        return "{" + string.Join(',', parts) + "}";
    }

    private static void Line(StringBuilder text, string name, string labels, double value) =>
        text.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
}
