using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Calling;

namespace MoEMesh.Routing;

/// <summary>
/// What the gating side tells about its layers. Instruments (meter "MoEMesh.Routing"): every expert call a
/// mixture-of-experts layer made, by direction and outcome (ok, timeout, cut, unreachable, rejected,
/// fallback), hedged or not, and its time per host; how long beam search took; how many experts answered
/// for each text; texts left without an answer; training steps by outcome, their loss and the evenness of
/// their experts' utilisation. Log: each call that did not end ok at Debug (with its
/// error) and texts that fell back to a local expert, both at Debug (a node serving queries with a host down
/// would log them for every batch), texts left without an answer at Information.
/// </summary>
public sealed partial class RoutingTelemetry : IDisposable
{
    /// <summary>Name of the meter.</summary>
    public const string MeterName = "MoEMesh.Routing";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _calls;
    private readonly Histogram<double> _callTime;
    private readonly Histogram<double> _beamSearch;
    private readonly Histogram<int> _expertsPerSample;
    private readonly Counter<long> _unanswered;
    private readonly Counter<long> _trainingSteps;
    private readonly Histogram<double> _trainingLoss;
    private readonly Histogram<double> _trainingUtilisation;
    private readonly ILogger _logger;

    /// <param name="factory">The host's meter factory; null makes a meter of its own (disposed with this).</param>
    /// <param name="logger">Where the calls that went wrong are told; none when null.</param>
    public RoutingTelemetry(IMeterFactory? factory = null, ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
        _ownsMeter = factory is null;
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _calls = _meter.CreateCounter<long>("moemesh.routing.expert_calls", "{call}",
            "Expert calls by direction (forward, backward) and outcome (ok, timeout, cut after the grace period, unreachable, rejected, fallback: a local expert standing in)");
        _callTime = _meter.CreateHistogram<double>("moemesh.routing.expert_call.duration", "ms", "Time from sending an expert call to its end, by direction and host");
        _beamSearch = _meter.CreateHistogram<double>("moemesh.routing.beam_search.duration", "ms", "Time beam search took to find a batch's experts, their hosts included");
        _expertsPerSample = _meter.CreateHistogram("moemesh.routing.experts_per_sample", "{expert}", "Experts that answered for a text in a layer", tags: null,
            new InstrumentAdvice<int> { HistogramBucketBoundaries = [0, 1, 2, 3, 4, 6, 8, 16, 32, 64] });
        _unanswered = _meter.CreateCounter<long>("moemesh.routing.unanswered_samples", "{text}", "Texts no expert answered for (and no local expert stood in for)");
        _trainingSteps = _meter.CreateCounter<long>("moemesh.routing.training.steps", "{step}", "Training steps by outcome (ok; failed: no expert answered, the step was skipped)");
        _trainingLoss = _meter.CreateHistogram("moemesh.routing.training.loss", null, "Cross-entropy loss of each training step (sum over count is the mean)", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.03, 0.1, 0.3, 1, 2, 3, 4, 6, 10] });
        _trainingUtilisation = _meter.CreateHistogram("moemesh.routing.training.utilisation", null,
            "Evenness of each training step's expert assignments, H(load) / log(E) averaged over the routed layers: 1 is every expert used alike", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1] });
    }

    /// <summary>A training step was taken (its loss and utilisation), or failed (null: no expert answered).</summary>
    public void TrainingStep(Models.TrainingStep? step)
    {
        _trainingSteps.Add(1, new KeyValuePair<string, object?>("outcome", step is null ? "failed" : "ok"));
        if (step is null) return;
        _trainingLoss.Record(step.Loss);
        if (!double.IsNaN(step.Evenness)) _trainingUtilisation.Record(step.Evenness);
    }

    /// <summary>Beam search for one batch took <paramref name="elapsed"/>.</summary>
    public void BeamSearch(TimeSpan elapsed) => _beamSearch.Record(elapsed.TotalMilliseconds);

    /// <summary>A layer's forward ended: its calls, and the experts each text got.</summary>
    public void Forward(FanOutResult result)
    {
        Calls("forward", result.Trace);
        foreach (int experts in result.ExpertsPerSample) _expertsPerSample.Record(experts);
        int fellBack = result.FellBack.Count(f => f);
        if (fellBack > 0) LogFellBack(_logger, fellBack, result.FellBack.Count);
    }

    /// <summary>A layer's forward left texts without an answer: its calls, and the texts.</summary>
    public void Unanswered(IReadOnlyList<ExpertCallTrace> trace, int texts)
    {
        Calls("forward", trace);
        _unanswered.Add(texts);
        LogUnanswered(_logger, texts, string.Join("; ", trace.Where(t => t.Outcome != CallOutcome.Ok)));
    }

    /// <summary>A layer's backward ended with these calls.</summary>
    public void Backward(IReadOnlyList<ExpertCallTrace> trace) => Calls("backward", trace);

    private void Calls(string direction, IReadOnlyList<ExpertCallTrace> trace)
    {
        foreach (var call in trace)
        {
            _calls.Add(1, new("direction", direction), new("outcome", Outcome(call)), new("hedged", call.Hedged ? "true" : "false"));
            if (call.Outcome != CallOutcome.Ok) LogCall(_logger, direction, call.ToString());
            // A uid with no live host was never called ("none"): no time to record.
            if (!call.Local && call.Host != "none") _callTime.Record(call.Elapsed.TotalMilliseconds, new("direction", direction), new("host", call.Host));
        }
    }

    private static string Outcome(ExpertCallTrace call) => call switch
    {
        { Local: true } => "fallback",
        { Outcome: CallOutcome.Timeout, Error: { } error } when error.StartsWith("cut:", StringComparison.Ordinal) => "cut",
        _ => call.Outcome.ToString().ToLowerInvariant(),
    };

    [LoggerMessage(EventId = 610, Level = LogLevel.Debug, Message = "Expert {Direction} call did not end ok: {Call}")]
    private static partial void LogCall(ILogger logger, string direction, string call);

    [LoggerMessage(EventId = 611, Level = LogLevel.Debug, Message = "{FellBack} of {Texts} texts fell back to a local expert: the experts chosen for them did not answer")]
    private static partial void LogFellBack(ILogger logger, int fellBack, int texts);

    [LoggerMessage(EventId = 612, Level = LogLevel.Information, Message = "{Texts} texts got no expert answer and no local expert could stand in; the calls that failed: {Calls}")]
    private static partial void LogUnanswered(ILogger logger, int texts, string calls);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }
}
