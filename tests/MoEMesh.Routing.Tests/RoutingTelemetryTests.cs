using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Calling;
using MoEMesh.Testing;

namespace MoEMesh.Routing.Tests;

/// <summary>What the gating side counts and logs of its layers' calls.</summary>
public sealed class RoutingTelemetryTests
{
    [Fact]
    public void EveryCall_IsCountedByDirectionOutcomeAndHedging_TimedByHost_AndWhatWentWrongIsLogged()
    {
        var logger = new ListLogger();
        using var telemetry = new RoutingTelemetry(null, logger);
        var measured = new List<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == RoutingTelemetry.MeterName) l.EnableMeasurementEvents(instrument);
        };
        // Layers in this test project run without telemetry, so every measurement of the meter is this test's.
        void Keep(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            lock (measured) measured.Add((instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        }
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Keep(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Keep(i, v, t));
        listener.SetMeasurementEventCallback<int>((i, v, t, _) => Keep(i, v, t));
        listener.Start();
        var uid = ExpertUid.Parse("telemetry.0.1");
        ExpertCallTrace[] forward =
        [
            new(uid, "telemetry-host", CallOutcome.Ok, null, TimeSpan.FromMilliseconds(5), 2, false),
            new(uid, "telemetry-host", CallOutcome.Timeout, "cut: the other experts had answered and the grace period ended, or another host answered first", TimeSpan.FromMilliseconds(9), 2, false, Hedged: true),
            new(uid, "local", CallOutcome.Ok, null, TimeSpan.FromMilliseconds(1), 2, true),
        ];

        telemetry.Unanswered(forward, 3);
        telemetry.Backward([new(uid, "telemetry-host", CallOutcome.Unreachable, "connection refused", TimeSpan.FromMilliseconds(2), 2, false)]);

        string[] Calls(string direction) => [.. measured.Where(m => m.Instrument == "moemesh.routing.expert_calls" && (string?)m.Tags["direction"] == direction)
            .Select(m => $"{m.Tags["outcome"]}/{m.Tags["hedged"]}")];
        Assert.Equal(["ok/false", "cut/true", "fallback/false"], Calls("forward"));
        Assert.Equal(["unreachable/false"], Calls("backward"));
        var times = measured.Where(m => m.Instrument == "moemesh.routing.expert_call.duration").ToArray();
        Assert.Equal([5.0, 9.0, 2.0], times.Select(t => t.Value));
        Assert.Equal(["forward", "forward", "backward"], times.Select(t => (string?)t.Tags["direction"]));
        Assert.All(times, t => Assert.Equal("telemetry-host", t.Tags["host"]));
        Assert.Equal([3.0], measured.Where(m => m.Instrument == "moemesh.routing.unanswered_samples").Select(m => m.Value));

        Assert.Contains(logger.Lines, l => l.Level == LogLevel.Information && l.Message.StartsWith("3 texts got no expert answer", StringComparison.Ordinal) && l.Message.Contains("cut: "));
        var debug = logger.Lines.Where(l => l.Level == LogLevel.Debug).Select(l => l.Message).ToArray();
        Assert.Equal(2, debug.Length);
        Assert.StartsWith("Expert forward call did not end ok: telemetry.0.1 at telemetry-host (hedged): Timeout", debug[0]);
        Assert.StartsWith("Expert backward call did not end ok: telemetry.0.1 at telemetry-host: Unreachable (connection refused)", debug[1]);
    }

    [Fact]
    public void TrainingSteps_AreCountedByOutcome_WithTheirLossAndUtilisation()
    {
        using var telemetry = new RoutingTelemetry();
        var measured = new List<(string Instrument, double Value, string? Outcome)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            // Trainers in this test project run without telemetry, so every training measurement is this test's.
            if (instrument.Meter.Name == RoutingTelemetry.MeterName && instrument.Name.Contains(".training.", StringComparison.Ordinal)) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => measured.Add((i.Name, v, (string?)t.ToArray().Single(x => x.Key == "outcome").Value)));
        listener.SetMeasurementEventCallback<double>((i, v, _, _) => measured.Add((i.Name, v, null)));
        listener.Start();
        // Two experts of four, one text each: the load's entropy is log 2, its evenness log 2 / log 4.
        var utilisation = new Gating.Utilisation(new Dictionary<string, int> { ["t.0"] = 1, ["t.1"] = 1 }, 4);

        telemetry.TrainingStep(new Models.TrainingStep(1.5f, 2, 1, 0, [1.0], 0, [utilisation]));
        telemetry.TrainingStep(null);
        telemetry.TrainingStep(new Models.TrainingStep(0.5f, 2, 2, 0, [], 0, []));

        Assert.Equal([("ok", 1.0), ("failed", 1.0), ("ok", 1.0)], measured.Where(m => m.Instrument == "moemesh.routing.training.steps").Select(m => (m.Outcome!, m.Value)));
        Assert.Equal([1.5, 0.5], measured.Where(m => m.Instrument == "moemesh.routing.training.loss").Select(m => m.Value));
        // A dense step routes nothing: no utilisation to record.
        var evenness = Assert.Single(measured, m => m.Instrument == "moemesh.routing.training.utilisation").Value;
        Assert.Equal(0.5, evenness, 1e-9);
    }
}
