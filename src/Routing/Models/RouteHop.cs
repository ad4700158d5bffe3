using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Routing.Models;

/// <summary>
/// One expert a text met on its way through a layer: which, where, with what weight in the combined
/// output, how long its call took, and how it ended: ok, fallback (a local expert stood in),
/// timeout, failed (unreachable or refused), or null (an AdaMoE null expert, which answers nothing).
/// </summary>
/// <param name="Layer">The layer, from 0.</param>
/// <param name="Expert">The uid, or "null" for a null expert.</param>
/// <param name="Host">The host's PeerId; "local" for the gating node's own expert, "none" when no host was found.</param>
/// <param name="Weight">Its weight in the layer's output (0 when it did not answer).</param>
/// <param name="LatencyMs">Time of the call that carried the text (0 for a null expert).</param>
/// <param name="Outcome">ok, fallback, timeout, failed or null.</param>
public sealed record RouteHop(int Layer, string Expert, string Host, float Weight, double LatencyMs, string Outcome)
{
    /// <summary>The route of sample <paramref name="sample"/> through one layer's step: chosen experts best first, then local stand-ins, then null experts.</summary>
    public static IEnumerable<RouteHop> Of(MixtureStep step, int layer, int sample)
    {
        var used = step.Experts.Used[sample];
        foreach (var choice in step.Choices[sample])
        {
            var trace = step.Experts.Trace.FirstOrDefault(t => t.Uid == choice.Uid && !t.Local);
            var answered = used.Where(u => u.Uid == choice.Uid && !u.Local).Select(u => (float?)u.Weight).FirstOrDefault();
            string outcome = answered is not null ? "ok" : trace?.Outcome == CallOutcome.Timeout ? "timeout" : "failed";
            yield return new RouteHop(layer, choice.Uid.Value, trace?.Host ?? "none", answered ?? 0f, Milliseconds(trace), outcome);
        }
        foreach (var stand in used.Where(u => u.Local))
        {
            var trace = step.Experts.Trace.FirstOrDefault(t => t.Uid == stand.Uid && t.Local);
            yield return new RouteHop(layer, stand.Uid.Value, "local", stand.Weight, Milliseconds(trace), "fallback");
        }
        var nulls = step.Nulls[sample];
        float chosenShare = nulls.Sum(n => n.Weight);
        foreach (var n in nulls)
            yield return new RouteHop(layer, "null", "", n.Weight / chosenShare * step.Experts.NullShare[sample], 0, "null");
    }

    private static double Milliseconds(ExpertCallTrace? trace) => trace is null ? 0 : Math.Round(trace.Elapsed.TotalMilliseconds, 3);
}
