using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;

namespace MoEMesh.Routing.Calling;

/// <summary>
/// Checkable correctness: replicas that announce the same weights snapshot must answer alike. Now and then
/// (<see cref="RoutingOptions.AuditShare"/> of forward answers) the input a host answered is sent, in the
/// background, to up to two other hosts of the uid that announce the same snapshot, and the answers are
/// compared (<see cref="RoutingOptions.AuditTolerance"/>). With three answers, a host whose answer matches
/// neither of the two others while they match each other is flagged in <see cref="PeerHealth"/>: gating
/// nodes stop calling it. Two answers that disagree flag nobody (there is no majority) and are counted as
/// disputed. The caller's answer is never held up.
/// </summary>
public sealed class ExpertAudit(IExpertInvoker remote, PeerHealth health, RoutingOptions options, TimeProvider time, Random? random = null)
{
    private readonly Random _random = random ?? Random.Shared;
    private int _running;

    /// <summary>Most audits in flight at once; further answers go unaudited meanwhile.</summary>
    public const int MaxConcurrent = 4;

    /// <summary>
    /// Maybe audits, in the background, the answer <paramref name="output"/> that <paramref name="answered"/> gave for
    /// <paramref name="input"/> (copies are taken; the caller keeps its tensors and never waits for the audit).
    /// </summary>
    public void Consider(ExpertUid uid, ExpertHostInfo answered, IReadOnlyList<ExpertHostInfo> hosts, Tensor input, Tensor output)
    {
        if (options.AuditShare <= 0 || answered.WeightsSha256 is not { } snapshot) return;
        var candidates = hosts.Where(h => h.Host != answered.Host && h.WeightsSha256 == snapshot && !health.IsFlagged(h.Host)).ToArray();
        if (candidates.Length == 0 || _random.NextDouble() >= options.AuditShare) return;
        // Witnesses at random, so every replica is checked now and then, not only those ranked next.
        var witnesses = candidates.OrderBy(_ => _random.Next()).Take(2).ToArray();
        if (Interlocked.Increment(ref _running) > MaxConcurrent)
        {
            Interlocked.Decrement(ref _running);
            return;
        }
        var inputCopy = input.Clone();
        var outputCopy = output.Clone();
        _ = Task.Run(async () =>
        {
            try
            {
                await AuditAsync(uid, answered, witnesses, inputCopy, outputCopy);
            }
            catch (Exception)
            {
                // An audit is a check on the side: one that cannot run (a witness's call broke) decides nothing.
            }
            finally
            {
                inputCopy.Dispose();
                outputCopy.Dispose();
                Interlocked.Decrement(ref _running);
            }
        });
    }

    private async Task AuditAsync(ExpertUid uid, ExpertHostInfo answered, ExpertHostInfo[] witnesses, Tensor input, Tensor output)
    {
        var deadline = time.GetUtcNow() + options.ForwardTimeout;
        var results = await Task.WhenAll(witnesses.Select(w => remote.ForwardAsync(new ExpertTarget(uid, w.Endpoint), input, options.WireCompression, deadline, CancellationToken.None)));
        try
        {
            var answers = new List<(ExpertHostInfo Host, Tensor Output)> { (answered, output) };
            answers.AddRange(witnesses.Zip(results).Where(r => r.Second.IsOk && r.Second.Value!.Shape == output.Shape).Select(r => (r.First, r.Second.Value!)));
            if (answers.Count < 2) return;
            health.RecordAudit();
            bool[,] agree = new bool[answers.Count, answers.Count];
            for (int i = 0; i < answers.Count; i++)
                for (int j = 0; j < answers.Count; j++)
                    agree[i, j] = i == j || Close(answers[i].Output.Span, answers[j].Output.Span);
            if (answers.Count == 2)
            {
                if (!agree[0, 1]) health.RecordDispute();
                return;
            }
            for (int i = 0; i < 3; i++)
            {
                int a = (i + 1) % 3, b = (i + 2) % 3;
                if (!agree[i, a] && !agree[i, b] && agree[a, b])
                    health.Flag(answers[i].Host.Host, $"its answer for {uid} differed from those of {answers[a].Host.Host} and {answers[b].Host.Host}, which announce the same weights");
            }
        }
        finally
        {
            foreach (var r in results) r.Value?.Dispose();
        }
    }

    private bool Close(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        for (int i = 0; i < a.Length; i++)
            if (!(Math.Abs(a[i] - b[i]) <= options.AuditTolerance)) return false;
        return true;
    }
}
