using System.Numerics.Tensors;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Calling;

/// <summary>
/// Calls many experts for a batch and always answers in time. One request per expert carries every sample
/// routed to it (Hivemind sends one per sample); the whole fan-out has one absolute deadline (the
/// request's, else ForwardTimeout from now), and the local fallback, all groups at once, ends by that
/// deadline plus FallbackMargin. Once every sample has KMin answers (or cannot get more), stragglers get at most
/// GraceAfterKMin and are then cancelled (the cancel frame reaches their hosts). A host that cannot be
/// reached is replaced by the uid's next host while time remains. An answer holding NaN or Inf counts as
/// a failure. Each sample's output is its answered experts' outputs weighted by their gate weights
/// renormalised over those that answered. A sample left with fewer than KMin answers gets a local
/// expert's answer as well (the request's fallback); only a sample with no answer and no fallback fails
/// the call, with every expert, host, outcome and elapsed time in the message.
/// </summary>
public sealed partial class ExpertFanOut(IExpertInvoker remote, IExpertInvoker? local, PeerHealth health, RoutingOptions options, TimeProvider time)
{
    private static readonly PeerEndpoint LocalEndpoint = new(new PeerAddress("local", 1));
    private readonly ExpertAudit _audit = new(remote, health, options, time);

    /// <summary>How activations and gradients travel (<see cref="RoutingOptions.Compression"/>).</summary>
    public Protocol.Wire.Compression Compression => options.WireCompression;

    /// <summary>The deadlines a forward runs under.</summary>
    public RoutingOptions Options => options;

    /// <summary>The clock deadlines are kept by.</summary>
    public TimeProvider Time => time;

    /// <summary>What this gating node's calls have seen of each host (back-off after failures, flags from audits).</summary>
    public PeerHealth Health => health;

    /// <summary>Runs the forward fan-out.</summary>
    /// <exception cref="ExpertCallFailedException">A sample got no answer and has no local fallback.</exception>
    public async Task<FanOutResult> ForwardAsync(FanOutRequest request, CancellationToken cancellationToken)
    {
        int samples = request.Choices.Count;
        if (request.Input.Rows != samples) throw new ArgumentException($"The batch has {request.Input.Rows} samples but {samples} choices.");
        var now = time.GetUtcNow();
        var deadline = request.Deadline ?? now + options.ForwardTimeout;
        var groups = request.Choices.SelectMany((choices, s) => choices.Select(c => (c.Uid, Sample: s)))
            .GroupBy(x => x.Uid).ToDictionary(g => g.Key, g => g.Select(x => x.Sample).Distinct().ToArray());
        var kmin = request.Choices.Select(c => Math.Min(options.KMin, c.Count)).ToArray();
        var answered = new int[samples];

        var answers = new Dictionary<AnswerKey, ExpertAnswer>();
        var trace = new List<ExpertCallTrace>();
        var calls = groups.Select(g => (g.Value, (Func<CancellationToken, Task<FinishedCall<ExpertAnswer>>>)(t => CallAsync(request, g.Key, g.Value, deadline, t))));
        // Finding the experts may have used the whole deadline: then the calls get none of it (and fall back).
        foreach (var outcome in await CollectAsync(calls, kmin, deadline > now ? deadline - now : TimeSpan.Zero, cancellationToken))
        {
            trace.Add(outcome.Trace);
            if (outcome.Answer is { } answer) answers[new AnswerKey(outcome.Trace.Uid, false)] = answer;
        }
        foreach (var answer in answers.Values)
            foreach (int s in answer.Samples) answered[s]++;
        cancellationToken.ThrowIfCancellationRequested();
        var fellBack = await FallBackAsync(request, answered, kmin, answers, trace, deadline + options.FallbackMargin, cancellationToken);
        return Combine(request, answers, fellBack, trace);
    }

    /// <summary>
    /// Calls one expert's hosts in health order until one answers, a fast failure leaving time for the
    /// next. Hedging: when a host with a known p95 has not answered by then and another host is left, the
    /// same request goes to that host too; the first answer wins and the other call is cancelled (its
    /// cancellation is not held against its health). When every known host was unreachable, the request's
    /// <see cref="FanOutRequest.Rediscover"/> is asked once for hosts not tried yet (the known ones may
    /// come from a cache that predates a restart).
    /// </summary>
    private async Task<FinishedCall<ExpertAnswer>> CallAsync(FanOutRequest request, ExpertUid uid, int[] samples, DateTimeOffset deadline, CancellationToken stragglers)
    {
        await Task.Yield();
        var hosts = health.Order(request.Hosts.GetValueOrDefault(uid) ?? []);
        long started = time.GetTimestamp();
        if (hosts.Count == 0)
            return new FinishedCall<ExpertAnswer>(samples, null, new ExpertCallTrace(uid, "none", CallOutcome.Unreachable, "no live host is announced", TimeSpan.Zero, samples.Length, false));
        var input = Gather(request.Input, samples);
        var tried = new HashSet<PeerId>();
        bool rediscovered = request.Rediscover is null;
        ExpertCallTrace? last = null;
        int next = 0;
        while (true)
        {
            while (next < hosts.Count && time.GetUtcNow() < deadline)
            {
                var host = hosts[next++];
                var spare = next < hosts.Count ? hosts[next] : null;
                var (attempt, hedged) = await AttemptWithHedgeAsync(request, uid, input, host, spare, deadline, stragglers);
                tried.Add(host.Host);
                if (hedged) tried.Add(hosts[next++].Host);
                var result = attempt.Result;
                if (result.IsOk && Problem(result.Value!, samples.Length) is { } problem)
                {
                    result.Value!.Dispose();
                    result = ExpertCallResult<Tensor>.Failed(CallOutcome.Rejected, problem);
                }
                last = new ExpertCallTrace(uid, attempt.Host.Host.ToString(), result.Outcome, result.Error, time.GetElapsedTime(started), samples.Length, false, hedged);
                if (result.IsOk) _audit.Consider(uid, attempt.Host, hosts, input, result.Value!);
                if (result.IsOk) return new FinishedCall<ExpertAnswer>(samples, new ExpertAnswer(new ExpertTarget(uid, attempt.Host.Endpoint), false, samples, input, result.Value!), last);
                if (result.Outcome != CallOutcome.Unreachable || stragglers.IsCancellationRequested) break;
            }
            if (rediscovered || last?.Outcome != CallOutcome.Unreachable || stragglers.IsCancellationRequested || time.GetUtcNow() >= deadline) break;
            rediscovered = true;
            hosts = health.Order((await RediscoverAsync(request.Rediscover!, uid, deadline, stragglers)).Where(h => !tried.Contains(h.Host)));
            next = 0;
        }
        input.Dispose();
        return new FinishedCall<ExpertAnswer>(samples, null, last ?? new ExpertCallTrace(uid, hosts[0].Host.ToString(), CallOutcome.Timeout, "the deadline passed", time.GetElapsedTime(started), samples.Length, false));
    }

    /// <summary>
    /// Fresh hosts of a uid, asked by the deadline; none when the lookup fails or is cut (the call then
    /// ends with the failure it already has: rediscovery is a second chance, never a new way to fail).
    /// </summary>
    private async Task<IReadOnlyList<Directory.ExpertHostInfo>> RediscoverAsync(Func<ExpertUid, CancellationToken, Task<IReadOnlyList<Directory.ExpertHostInfo>>> rediscover,
        ExpertUid uid, DateTimeOffset deadline, CancellationToken stragglers)
    {
        var remaining = deadline - time.GetUtcNow();
        if (remaining <= TimeSpan.Zero) return [];
        using var timeout = new CancellationTokenSource(remaining, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stragglers, timeout.Token);
        try
        {
            return await rediscover(uid, linked.Token);
        }
        catch (Exception e) when (e is not OperationCanceledException || linked.IsCancellationRequested)
        {
            return [];
        }
    }

    private async Task<(Attempt Winner, bool Hedged)> AttemptWithHedgeAsync(FanOutRequest request, ExpertUid uid, Tensor input, Directory.ExpertHostInfo host,
        Directory.ExpertHostInfo? spare, DateTimeOffset deadline, CancellationToken stragglers)
    {
        using var primaryCancel = CancellationTokenSource.CreateLinkedTokenSource(stragglers);
        var primary = AttemptAsync(request, uid, input, host, deadline, primaryCancel.Token);
        if (spare is null || health.P95(host.Host) is not { } p95) return (await primary, false);
        var hedgeDue = new TaskCompletionSource();
        using (time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), hedgeDue, p95, Timeout.InfiniteTimeSpan))
        {
            if (await Task.WhenAny(primary, hedgeDue.Task) == primary) return (await primary, false);
        }
        using var hedgeCancel = CancellationTokenSource.CreateLinkedTokenSource(stragglers);
        var hedge = AttemptAsync(request, uid, input, spare, deadline, hedgeCancel.Token);
        var first = await Task.WhenAny(primary, hedge);
        var other = first == primary ? hedge : primary;
        var winner = await first;
        if (!winner.Result.IsOk)
        {
            // The first to finish failed: the other may still answer.
            var second = await other;
            if (!second.Result.IsOk) return (winner, true);
            return (second, true);
        }
        (other == primary ? primaryCancel : hedgeCancel).Cancel();
        var loser = await other;
        loser.Result.Value?.Dispose();
        return (winner, true);
    }

    /// <summary>One call to one host; its outcome is recorded in peer health unless it was cancelled as a hedge loser.</summary>
    private async Task<Attempt> AttemptAsync(FanOutRequest request, ExpertUid uid, Tensor input, Directory.ExpertHostInfo host, DateTimeOffset deadline, CancellationToken cancel)
    {
        long started = time.GetTimestamp();
        ExpertCallResult<Tensor> result;
        health.Started(host.Host);
        try
        {
            result = await remote.ForwardAsync(new ExpertTarget(uid, host.Endpoint), input, Compression, deadline, cancel);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            var cut = time.GetElapsedTime(started);
            health.RecordCut(host.Host, cut);
            return new Attempt(host, ExpertCallResult<Tensor>.Failed(CallOutcome.Timeout, "cut: the other experts had answered and the grace period ended, or another host answered first"), cut);
        }
        finally
        {
            health.Ended(host.Host);
        }
        var elapsed = time.GetElapsedTime(started);
        health.Record(host.Host, result.Outcome, elapsed);
        return new Attempt(host, result, elapsed);
    }

    private sealed record Attempt(Directory.ExpertHostInfo Host, ExpertCallResult<Tensor> Result, TimeSpan Elapsed);

    /// <summary>
    /// Local experts answer for samples short of KMin, every local expert at once, all by
    /// <paramref name="deadline"/>; returns which samples fell back.
    /// </summary>
    private async Task<bool[]> FallBackAsync(FanOutRequest request, int[] answered, int[] kmin, Dictionary<AnswerKey, ExpertAnswer> answers,
        List<ExpertCallTrace> trace, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var fellBack = new bool[answered.Length];
        if (local is null || request.Fallback is null) return fellBack;
        var needed = Enumerable.Range(0, answered.Length).Where(s => answered[s] < kmin[s] || (request.Choices[s].Count == 0 && NullShareOf(request, s) == 0f))
            .Select(s => (Sample: s, Uid: request.Fallback(s))).Where(x => x.Uid is not null).GroupBy(x => x.Uid!.Value)
            .Select(g => (Uid: g.Key, Samples: g.Select(x => x.Sample).ToArray())).ToArray();
        var results = await Task.WhenAll(needed.Select(group => FallBackOneAsync(request, group.Uid, group.Samples, deadline, cancellationToken)));
        foreach (var (answer, line) in results)
        {
            trace.Add(line);
            if (answer is null) continue;
            answers[new AnswerKey(answer.Target.Uid, true)] = answer;
            foreach (int s in answer.Samples) fellBack[s] = true;
        }
        return fellBack;
    }

    private async Task<(ExpertAnswer? Answer, ExpertCallTrace Trace)> FallBackOneAsync(FanOutRequest request, ExpertUid uid, int[] samples, DateTimeOffset deadline,
        CancellationToken cancellationToken)
    {
        await Task.Yield();
        var input = Gather(request.Input, samples);
        long started = time.GetTimestamp();
        var target = new ExpertTarget(uid, LocalEndpoint);
        var result = await local!.ForwardAsync(target, input, Compression, deadline, cancellationToken);
        if (result.IsOk && Problem(result.Value!, samples.Length) is { } problem)
        {
            result.Value!.Dispose();
            result = ExpertCallResult<Tensor>.Failed(CallOutcome.Rejected, problem);
        }
        var line = new ExpertCallTrace(uid, "local", result.Outcome, result.Error, time.GetElapsedTime(started), samples.Length, true);
        if (result.IsOk) return (new ExpertAnswer(target, true, samples, input, result.Value!), line);
        input.Dispose();
        return (null, line);
    }

    private static FanOutResult Combine(FanOutRequest request, Dictionary<AnswerKey, ExpertAnswer> answers, bool[] fellBack, List<ExpertCallTrace> trace)
    {
        int samples = request.Choices.Count;
        var any = answers.Values.FirstOrDefault();
        var used = new IReadOnlyList<UsedExpert>[samples];
        var nullShare = new float[samples];
        var unresolved = new List<int>();
        for (int s = 0; s < samples; s++)
        {
            var contributions = request.Choices[s].Where(c => answers.ContainsKey(new AnswerKey(c.Uid, false)))
                .Select(c => new UsedExpert(c.Uid, false, c.Weight)).ToList();
            if (fellBack[s])
            {
                var fallback = answers.First(a => a.Key.Local && a.Value.RowOf(s) >= 0).Key.Uid;
                // The local expert stands in for the chosen experts that did not answer, with their weight.
                float missing = request.Choices[s].Where(c => !answers.ContainsKey(new AnswerKey(c.Uid, false))).Sum(c => c.Weight);
                contributions.Add(new UsedExpert(fallback, true, missing <= 0f ? 1f : missing));
            }
            float nulls = NullShareOf(request, s);
            // Only a sample that chose nothing but null experts is whole without an answer (or any sample, beside a shared expert).
            if (contributions.Count == 0 && (request.Choices[s].Count > 0 || nulls == 0f) && !request.AllowUnanswered) unresolved.Add(s);
            float total = contributions.Sum(c => c.Weight) + nulls;
            nullShare[s] = total > 0f ? nulls / total : 0f;
            used[s] = contributions.Select(c => c with { Weight = total > 0f ? c.Weight / total : 1f / contributions.Count }).ToArray();
        }
        if (unresolved.Count > 0)
        {
            foreach (var a in answers.Values) a.Dispose();
            throw new ExpertCallFailedException(
                $"{unresolved.Count} of {samples} samples got no expert answer and no local expert could answer for them. Calls: "
                + (trace.Count == 0 ? "none" : string.Join("; ", trace)), trace, unresolved);
        }
        var output = Tensor.Zeros(any?.Output.Shape.WithRows(samples) ?? request.Input.Shape);
        for (int s = 0; s < samples; s++)
            foreach (var e in used[s])
            {
                var answer = answers[new AnswerKey(e.Uid, e.Local)];
                TensorPrimitives.MultiplyAdd(answer.Output.Row(answer.RowOf(s)), e.Weight, output.Row(s), output.Row(s));
            }
        return new FanOutResult(output, fellBack, used, nullShare, trace, answers);
    }

    private static float NullShareOf(FanOutRequest request, int sample) => request.NullShare is { } share ? share[sample] : 0f;

    /// <summary>Why an expert's output cannot be used, or null.</summary>
    private static string? Problem(Tensor output, int rows)
    {
        if (output.Shape.Rank == 0 || output.Rows != rows) return $"the answer has shape {output.Shape}; expected {rows} rows";
        return float.IsFinite(TensorPrimitives.MaxMagnitude<float>(output.Span)) || output.Length == 0 ? null : "the answer contains NaN or Inf";
    }

    private static Tensor Gather(Tensor input, int[] samples)
    {
        var rows = Tensor.Uninitialized(input.Shape.WithRows(samples.Length));
        for (int i = 0; i < samples.Length; i++) input.Row(samples[i]).CopyTo(rows.Row(i));
        return rows;
    }

}
