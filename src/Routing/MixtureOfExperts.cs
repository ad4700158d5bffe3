using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Settings;
using MoEMesh.Tensors;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing;

/// <summary>
/// A mixture-of-experts layer whose experts live anywhere in the swarm. Forward: the gate scores each grid
/// dimension; beam search finds each sample's best live experts; the directory gives their hosts; the
/// selection (top-k, or top-p, with the gate's null experts competing) weights them by a softmax over
/// their logits; the fan-out calls them and combines the answers (falling back to local experts when
/// needed). All of it runs under one deadline, ForwardTimeout from the start: finding experts may use
/// DiscoveryTimeout of it (what is not found by then counts as absent), the calls end by the deadline and
/// the local fallback by the deadline plus FallbackMargin. Backward: the
/// fan-out sends each answering expert its gradient (it steps its own optimizer on its host), and the
/// gate gets dL/dlogit = w (a − Σ w a) for the experts that answered, with a = ⟨dL/dy, y_expert⟩, plus the
/// gradients of the auxiliary router losses (load balance, z-loss, marginal and per-sample entropy) computed at forward time.
/// </summary>
/// <remarks>
/// Beam search takes only uids with an announced host. With <see cref="MixtureOfExpertsOptions.Kind"/> set,
/// hosts of another expert type or schema are skipped (counted and logged once by <paramref name="incompatible"/>)
/// and never called; <paramref name="localExperts"/> must then be local experts of that kind.
/// </remarks>
public sealed class MixtureOfExperts(GatingNetwork gate, BeamSearch search, ExpertDirectory directory, ExpertFanOut fanOut, MixtureOfExpertsOptions options,
    IReadOnlyCollection<ExpertUid>? localExperts = null, IncompatibleHosts? incompatible = null, RoutingTelemetry? metrics = null)
{
    private readonly MixtureOfExpertsOptions _options = SettingsValidation.Valid(options);
    private readonly IReadOnlyCollection<ExpertUid> _local = localExperts ?? [];
    private readonly IncompatibleHosts _incompatible = incompatible ?? new IncompatibleHosts();

    /// <summary>The gate (its parameters train on the gating node).</summary>
    public GatingNetwork Gate => gate;

    /// <summary>Runs the layer forward for a batch [samples, d].</summary>
    /// <exception cref="ExpertCallFailedException">A sample got no answer and no local expert could answer.</exception>
    public async Task<MixtureStep> ForwardAsync(Tensor input, CancellationToken cancellationToken)
    {
        if (_options.Kind is { } kind && kind.Width != gate.InputDim)
            throw new ArgumentException($"The layer needs experts of width {kind.Width} but its gate takes inputs of width {gate.InputDim}.");
        // One deadline for the whole forward; finding experts may use DiscoveryTimeout of it.
        var deadline = fanOut.Time.GetUtcNow() + fanOut.Options.ForwardTimeout;
        using var discoveryOver = new CancellationTokenSource(fanOut.Options.DiscoveryTimeout, fanOut.Time);
        var scores = gate.Forward(input);
        var nullScores = gate.ForwardNull(input);
        RouterLossResult? losses = null;
        try
        {
            // Hosts found while the search checks which uids are usable are kept for the fan-out.
            var known = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>>();
            var perSample = GatingNetwork.PerSample(scores);
            long searchStarted = fanOut.Time.GetTimestamp();
            // A uid counts only with a host that can serve it: a prefix entry can name a uid no one hosts. Among those, a
            // uid whose every host just failed (backed off by this node: killed, say, while its records still last) or was
            // flagged by an audit is passed over while others are at hand, so the search takes the next best uid rather
            // than samples losing an expert until the records lapse; when every candidate is so, they count as before
            // (their hosts are tried anyway, in health order: a slow moment of a lone host is not its death).
            var found = await search.FindAsync(gate.Grid, perSample, _options.K, _options.BeamWidth, cancellationToken, async (candidates, token) =>
            {
                foreach (var (uid, hosts) in await FindHostsAsync(candidates, token)) known[uid] = hosts;
                var hosted = candidates.Where(u => known[u].Count > 0).ToHashSet();
                var usable = hosted.Where(u => known[u].Any(h => fanOut.Health.IsUsable(h.Host))).ToHashSet();
                return usable.Count > 0 ? usable : hosted;
            }, discoveryOver.Token);
            metrics?.BeamSearch(fanOut.Time.GetElapsedTime(searchStarted));
            var selections = found.Select((candidates, s) => Select(candidates, nullScores?.Row(s).ToArray())).ToArray();
            var choices = selections.Select(x => x.Experts).ToArray();
            var uids = choices.SelectMany(c => c.Select(e => e.Uid)).Distinct().ToArray();
            var missing = uids.Where(u => !known.ContainsKey(u)).ToArray();
            if (missing.Length > 0)
            {
                using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, discoveryOver.Token);
                try
                {
                    foreach (var (uid, hosts) in await FindHostsAsync(missing, either.Token)) known[uid] = hosts;
                }
                catch (OperationCanceledException) when (discoveryOver.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    // Out of time: those uids count as hostless and their samples fall back.
                }
            }
            if (_options.RouterLosses is { } weights)
                losses = RouterLosses.Compute(scores, choices.Select(c => (IReadOnlyList<IReadOnlyList<int>>)c.Select(e => e.Uid.Coordinates).ToArray()).ToArray(), weights);
            var utilisation = Utilisation.Of(choices.Select(c => c.Select(e => e.Uid)), gate.Grid.Count);
            var request = new FanOutRequest
            {
                Input = input,
                Choices = choices,
                Deadline = deadline,
                Hosts = known,
                Rediscover = RediscoverAsync,
                NullShare = nullScores is null ? null : selections.Select(x => x.Nulls.Sum(n => n.Weight)).ToArray(),
                Fallback = _local.Count == 0 ? null : s => Fallback(choices[s], perSample[s]),
                AllowUnanswered = _options.AllowUnanswered,
            };
            var fan = await fanOut.ForwardAsync(request, cancellationToken);
            metrics?.Forward(fan);
            return new MixtureStep(input, fan, scores, nullScores, choices, selections.Select(x => x.Nulls).ToArray(), losses, utilisation);
        }
        catch (Exception e)
        {
            if (e is ExpertCallFailedException failed) metrics?.Unanswered(failed.Trace, failed.UnansweredSamples.Count);
            foreach (var t in scores) t.Dispose();
            nullScores?.Dispose();
            losses?.Dispose();
            throw;
        }
    }

    /// <summary>Runs the layer backward: returns dL/d(input) and accumulates the gate's gradients.</summary>
    public async Task<Tensor> BackwardAsync(MixtureStep step, Tensor outputGradient, CancellationToken cancellationToken)
    {
        using var back = await fanOut.BackwardAsync(step.Experts, outputGradient, _options.FreezeExperts, cancellationToken);
        step.BackwardTrace = back.Trace;
        metrics?.Backward(back.Trace);
        var scoreGradients = gate.Grid.Sizes.Select(size => Tensor.Zeros(step.Input.Rows, size)).ToArray();
        using var nullGradient = gate.NullExperts > 0 ? Tensor.Zeros(step.Input.Rows, gate.NullExperts) : null;
        try
        {
            for (int s = 0; s < step.Input.Rows; s++)
            {
                var used = step.Experts.Used[s];
                var alignment = back.Alignment[s];
                float mean = 0f;
                for (int i = 0; i < used.Count; i++) mean += used[i].Weight * alignment[i];
                for (int i = 0; i < used.Count; i++)
                {
                    // A local stand-in for experts that did not answer carries their weight but no logit of its own.
                    if (used[i].Local) continue;
                    float dLogit = used[i].Weight * (alignment[i] - mean);
                    var coordinates = used[i].Uid.Coordinates;
                    for (int d = 0; d < coordinates.Count; d++) scoreGradients[d].Row(s)[coordinates[d]] += dLogit;
                }
                // A null expert's output is zero, so its alignment is zero: dL/dlogit = w (0 − Σ w a).
                var nulls = step.Nulls[s];
                float chosenShare = nulls.Sum(n => n.Weight);
                foreach (var n in nulls)
                    nullGradient!.Row(s)[n.Index] += n.Weight / chosenShare * step.Experts.NullShare[s] * -mean;
            }
            if (step.RouterLosses is { } losses)
                for (int d = 0; d < scoreGradients.Length; d++) Functions.Add(scoreGradients[d].Span, losses.ScoreGradients[d].Span, scoreGradients[d].Span);
            using var gateGradient = gate.Backward(step.Input, scoreGradients, nullGradient);
            var inputGradient = back.InputGradient.Clone();
            Functions.Add(inputGradient.Span, gateGradient.Span, inputGradient.Span);
            return inputGradient;
        }
        finally
        {
            foreach (var t in scoreGradients) t.Dispose();
        }
    }

    /// <summary>
    /// Top-k over the live candidates (best first) and the null experts together, or top-p: in score order
    /// until the softmax mass reaches P; weights are the softmax over the chosen logits. With no live
    /// candidate nothing is chosen (not even a null expert), so the sample falls back to a local expert.
    /// </summary>
    private Selection Select(IReadOnlyList<ScoredExpert> candidates, float[]? nullLogits)
    {
        if (candidates.Count == 0) return new Selection([], []);
        // One ranking; index −1 − j stands for null expert j. Ties keep real experts first.
        var chosen = candidates.Select((c, i) => (Index: i, c.Score)).Concat((nullLogits ?? []).Select((logit, j) => (Index: -1 - j, Score: logit)))
            .OrderByDescending(x => x.Score).Take(_options.K).ToArray();
        if (_options.TopP is { } p)
        {
            var probabilities = Softmax(chosen.Select(c => c.Score).ToArray());
            double mass = 0;
            int take = 0;
            while (take < chosen.Length && mass < p) mass += probabilities[take++];
            chosen = chosen.Take(Math.Max(1, take)).ToArray();
        }
        var weights = Softmax(chosen.Select(c => c.Score).ToArray());
        return new Selection(
            chosen.Select((c, i) => (c.Index, Weight: weights[i])).Where(x => x.Index >= 0).Select(x => new ExpertChoice(candidates[x.Index].Uid, x.Weight)).ToArray(),
            chosen.Select((c, i) => (c.Index, Weight: weights[i])).Where(x => x.Index < 0).Select(x => new NullChoice(-1 - x.Index, x.Weight)).ToArray());
    }

    private sealed record Selection(IReadOnlyList<ExpertChoice> Experts, IReadOnlyList<NullChoice> Nulls);

    /// <summary>The hosts of <paramref name="uids"/> that serve the layer's kind of expert (all of them without a kind).</summary>
    private async Task<IReadOnlyDictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>>> FindHostsAsync(IReadOnlyCollection<ExpertUid> uids, CancellationToken cancellationToken)
    {
        var hosts = await directory.FindAsync(uids, cancellationToken);
        return _options.Kind is { } kind ? hosts.ToDictionary(h => h.Key, h => _incompatible.Filter(h.Value, kind)) : hosts;
    }

    private async Task<IReadOnlyList<ExpertHostInfo>> RediscoverAsync(ExpertUid uid, CancellationToken cancellationToken)
    {
        var hosts = await directory.RediscoverAsync(uid, cancellationToken);
        return _options.Kind is { } kind ? _incompatible.Filter(hosts, kind) : hosts;
    }

    /// <summary>The local expert for a sample: a chosen uid hosted here, else the local expert the gate scores best.</summary>
    private ExpertUid? Fallback(IReadOnlyList<ExpertChoice> chosen, IReadOnlyList<float[]> scores)
    {
        foreach (var c in chosen)
            if (_local.Contains(c.Uid)) return c.Uid;
        return _local.Where(gate.Grid.Contains).OrderByDescending(u => gate.Grid.Score(u, scores)).ThenBy(u => u.Value, StringComparer.Ordinal).Cast<ExpertUid?>().FirstOrDefault();
    }

    private static float[] Softmax(float[] logits)
    {
        var result = new float[logits.Length];
        if (logits.Length == 0) return result;
        float max = logits.Max();
        float sum = 0f;
        for (int i = 0; i < logits.Length; i++) sum += result[i] = MathF.Exp(logits[i] - max);
        for (int i = 0; i < logits.Length; i++) result[i] /= sum;
        return result;
    }
}

/// <summary>A null expert chosen for a sample (AdaMoE), with its gate weight before renormalisation.</summary>
public readonly record struct NullChoice(int Index, float Weight);

/// <summary>One forward pass of a <see cref="MixtureOfExperts"/>, kept for its backward pass; dispose after.</summary>
public sealed class MixtureStep(Tensor input, FanOutResult experts, Tensor[] scores, Tensor? nullScores, IReadOnlyList<IReadOnlyList<ExpertChoice>> choices,
    IReadOnlyList<IReadOnlyList<NullChoice>> nulls, RouterLossResult? routerLosses, Utilisation utilisation) : IDisposable
{
    /// <summary>The layer's input (not owned).</summary>
    public Tensor Input { get; } = input;

    /// <summary>Per sample, the real experts the gate chose, best first, with their gate weights before renormalisation.</summary>
    public IReadOnlyList<IReadOnlyList<ExpertChoice>> Choices { get; } = choices;

    /// <summary>The fan-out: output, fallbacks, experts used, trace.</summary>
    public FanOutResult Experts { get; } = experts;

    /// <summary>The layer's output.</summary>
    public Tensor Output => Experts.Output;

    /// <summary>The gate's per-dimension scores.</summary>
    public IReadOnlyList<Tensor> Scores { get; } = scores;

    /// <summary>Per sample, the null experts chosen (empty without null experts).</summary>
    public IReadOnlyList<IReadOnlyList<NullChoice>> Nulls { get; } = nulls;

    /// <summary>Real experts (remote or local stand-ins) whose answers each sample used: what it cost.</summary>
    public IEnumerable<int> ExpertsPerSample => Experts.ExpertsPerSample;

    /// <summary>The auxiliary router losses of this batch (to add to the training loss), or null when off.</summary>
    public RouterLossResult? RouterLosses { get; } = routerLosses;

    /// <summary>How evenly this batch used the experts.</summary>
    public Utilisation Utilisation { get; } = utilisation;

    /// <summary>Every backward call, once the layer has run backward on this step (empty before).</summary>
    public IReadOnlyList<ExpertCallTrace> BackwardTrace { get; internal set; } = [];

    /// <inheritdoc />
    public void Dispose()
    {
        Experts.Dispose();
        foreach (var t in Scores) t.Dispose();
        nullScores?.Dispose();
        RouterLosses?.Dispose();
    }
}
