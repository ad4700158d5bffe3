using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MoEMesh.Node.Http;

/// <summary>
/// Serves the node's System.Diagnostics.Metrics instruments (meters named MoEMesh.*) in Prometheus text
/// format: counters as totals, histograms as histograms (cumulative buckets, sum and count; the buckets are
/// the instrument's advice, or <see cref="DefaultBuckets"/>, made for milliseconds), gauges read when scraped.
/// The node's meters come from its host's meter factory, so nodes sharing a process (tests, embedders) each
/// export their own; meters of no factory (the peer protocol's byte counts) are the process's and shown by
/// every node. Names become Prometheus names by replacing dots with underscores:
/// moemesh.dht.lookup.rounds is moemesh_dht_lookup_rounds.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    /// <summary>The content type of the exposition text.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Bucket bounds of a histogram that advises none: milliseconds, from half of one to ten seconds.</summary>
    public static readonly double[] DefaultBuckets = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

    private readonly MeterListener _listener = new();
    private readonly Dictionary<(Instrument Instrument, string Labels), Series> _series = [];
    private readonly Dictionary<Instrument, double[]?> _bounds = [];

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
                // A counter adds up what was recorded; an observable counter reports its total when asked, as a gauge does.
                bool added = instrument is Counter<int> or Counter<long> or Counter<double>;
                var bounds = Bounds(instrument);
                var type = bounds is not null ? "histogram" : added || instrument is ObservableCounter<int> or ObservableCounter<long> or ObservableCounter<double> ? "counter" : "gauge";
                if (instrument.Description is { Length: > 0 } help) text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
                text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
                foreach (var ((_, labels), series) in group.OrderBy(s => s.Key.Labels, StringComparer.Ordinal))
                {
                    if (bounds is not null && series.Buckets is { } buckets)
                    {
                        long cumulative = 0;
                        for (int b = 0; b < bounds.Length; b++)
                        {
                            cumulative += buckets[b];
                            Line(text, name + "_bucket", With(labels, "le", Number(bounds[b])), cumulative);
                        }
                        Line(text, name + "_bucket", With(labels, "le", "+Inf"), series.Count);
                        Line(text, name + "_sum", labels, series.Sum);
                        Line(text, name + "_count", labels, series.Count);
                    }
                    else
                    {
                        Line(text, name, labels, added ? series.Sum : series.Last);
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
            if (!_series.TryGetValue((instrument, labels), out var series))
                _series[(instrument, labels)] = series = new Series(Bounds(instrument) is { } bounds ? new long[bounds.Length] : null);
            series.Sum += value;
            series.Count++;
            series.Last = value;
            if (series.Buckets is { } buckets)
            {
                // The first bound at or above the value (Prometheus' le); above every bound, only +Inf counts it.
                int at = Array.BinarySearch(_bounds[instrument]!, value);
                if (at < 0) at = ~at;
                if (at < buckets.Length) buckets[at]++;
            }
        }
    }

    /// <summary>A histogram's bucket bounds (its advice, or the default); null for other instruments. Called under the lock.</summary>
    private double[]? Bounds(Instrument instrument)
    {
        if (_bounds.TryGetValue(instrument, out var known)) return known;
        return _bounds[instrument] = instrument switch
        {
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray() ?? DefaultBuckets,
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray() ?? DefaultBuckets,
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries?.ToArray() ?? DefaultBuckets,
            _ => null,
        };
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0) return "";
        var parts = new List<string>(tags.Length);
        foreach (var tag in tags)
            parts.Add(Label(tag.Key.Replace('.', '_'), Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? ""));
        parts.Sort(StringComparer.Ordinal);
        return "{" + string.Join(',', parts) + "}";
    }

    private static string Label(string name, string value) => $"{name}=\"{value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n")}\"";

    /// <summary><paramref name="labels"/> with one more label (the bucket's "le").</summary>
    private static string With(string labels, string name, string value) =>
        labels.Length == 0 ? "{" + Label(name, value) + "}" : labels[..^1] + "," + Label(name, value) + "}";

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static void Line(StringBuilder text, string name, string labels, double value) =>
        text.Append(name).Append(labels).Append(' ').Append(Number(value)).Append('\n');

    private sealed class Series(long[]? buckets)
    {
        public double Sum;
        public long Count;
        public double Last;

        /// <summary>A histogram's count per bucket (not cumulative); null for other instruments.</summary>
        public long[]? Buckets { get; } = buckets;
    }
}

/// <summary>GET /metrics, served by the app's <see cref="PrometheusExporter"/> (a node's, or a trainer's).</summary>
internal static class MetricsEndpoint
{
    public static void MapMetrics(this WebApplication app)
    {
        var exporter = app.Services.GetRequiredService<PrometheusExporter>();
        app.MapMethods("/metrics", HttpErrors.Read, () => Results.Text(exporter.Render(), PrometheusExporter.ContentType));
    }
}
