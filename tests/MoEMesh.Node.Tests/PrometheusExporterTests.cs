using System.Diagnostics.Metrics;
using MoEMesh.Node.Http;

namespace MoEMesh.Node.Tests;

/// <summary>How instruments come out in the exposition text, and whose meters a node's exporter shows.</summary>
public sealed class PrometheusExporterTests
{
    /// <summary>A meter factory of its own, as each node's host has.</summary>
    private sealed class Factory : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(new MeterOptions(options.Name) { Scope = this });
            _meters.Add(meter);
            return meter;
        }

        public void Dispose() => _meters.ForEach(m => m.Dispose());
    }

    [Fact]
    public void Histograms_HaveCumulativeBuckets_FromTheirAdviceOrTheDefault_AndCountersAddUp()
    {
        using var factory = new Factory();
        using var exporter = new PrometheusExporter(factory);
        var meter = factory.Create(new MeterOptions("MoEMesh.ExporterTest"));
        var latency = meter.CreateHistogram<double>("moemesh.test.latency", "ms", "a latency");
        var rows = meter.CreateHistogram("moemesh.test.rows", "{row}", null, tags: null, new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 4, 16] });
        var calls = meter.CreateCounter<long>("moemesh.test.calls");
        long total = 5;
        meter.CreateObservableCounter("moemesh.test.total", () => total);

        latency.Record(0.7, new KeyValuePair<string, object?>("host", "a"));
        latency.Record(3, new KeyValuePair<string, object?>("host", "a"));
        latency.Record(20_000, new KeyValuePair<string, object?>("host", "a"));
        rows.Record(1);
        rows.Record(5);
        calls.Add(2);
        calls.Add(3);
        exporter.Render();
        total = 7;
        var lines = exporter.Render().Split('\n');

        Assert.Contains("# TYPE moemesh_test_latency histogram", lines);
        Assert.Contains("# HELP moemesh_test_latency a latency", lines);
        Assert.Contains("moemesh_test_latency_bucket{host=\"a\",le=\"0.5\"} 0", lines);
        Assert.Contains("moemesh_test_latency_bucket{host=\"a\",le=\"1\"} 1", lines);
        Assert.Contains("moemesh_test_latency_bucket{host=\"a\",le=\"5\"} 2", lines);
        Assert.Contains("moemesh_test_latency_bucket{host=\"a\",le=\"10000\"} 2", lines);
        Assert.Contains("moemesh_test_latency_bucket{host=\"a\",le=\"+Inf\"} 3", lines);
        Assert.Contains("moemesh_test_latency_sum{host=\"a\"} 20003.7", lines);
        Assert.Contains("moemesh_test_latency_count{host=\"a\"} 3", lines);
        Assert.Equal(["moemesh_test_rows_bucket{le=\"1\"} 1", "moemesh_test_rows_bucket{le=\"4\"} 1", "moemesh_test_rows_bucket{le=\"16\"} 2", "moemesh_test_rows_bucket{le=\"+Inf\"} 2"],
            lines.Where(l => l.StartsWith("moemesh_test_rows_bucket", StringComparison.Ordinal)));
        Assert.Contains("# TYPE moemesh_test_calls counter", lines);
        Assert.Contains("moemesh_test_calls 5", lines);
        // An observable counter reports its total: the last one read, not the sum of every scrape's.
        Assert.Contains("# TYPE moemesh_test_total counter", lines);
        Assert.Contains("moemesh_test_total 7", lines);
    }

    [Fact]
    public void ANodesExporter_ShowsItsOwnMeters_AndThoseOfNoFactory_NotAnotherNodes()
    {
        using var mine = new Factory();
        using var theirs = new Factory();
        using var exporter = new PrometheusExporter(mine);
        using var process = new Meter("MoEMesh.ExporterTestProcess");
        mine.Create(new MeterOptions("MoEMesh.ExporterTest")).CreateCounter<long>("moemesh.test.mine").Add(1);
        theirs.Create(new MeterOptions("MoEMesh.ExporterTest")).CreateCounter<long>("moemesh.test.theirs").Add(1);
        process.CreateCounter<long>("moemesh.test.process").Add(1);
        mine.Create(new MeterOptions("Other.ExporterTest")).CreateCounter<long>("other.test").Add(1);

        var text = exporter.Render();

        Assert.Contains("moemesh_test_mine 1\n", text);
        Assert.Contains("moemesh_test_process 1\n", text);
        Assert.DoesNotContain("moemesh_test_theirs", text);
        Assert.DoesNotContain("other_test", text);
    }
}
