using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Routing;

/// <summary>
/// Makes mixture-of-experts layers that share one view of the swarm: its directory, the invoker that
/// reaches remote experts, peer health, the routing options and the record of incompatible hosts. A node
/// has one, with its own experts as the local fallback; a gating client (the CLI's train and eval) has one
/// without local experts.
/// </summary>
public sealed class MixtureOfExpertsFactory(ExpertDirectory directory, IExpertInvoker remote, PeerHealth health, RoutingOptions options, TimeProvider time,
    IncompatibleHosts incompatible, LocalExperts? local = null, RoutingTelemetry? metrics = null)
{
    /// <summary>Hosts skipped as incompatible by the layers made here.</summary>
    public IncompatibleHosts Incompatible => incompatible;

    /// <summary>
    /// A layer gated by <paramref name="gate"/>. Its local fallback is the local experts of the layer's
    /// <see cref="MixtureOfExpertsOptions.Kind"/> (all of them when the layer names no kind).
    /// </summary>
    public MixtureOfExperts Create(GatingNetwork gate, MixtureOfExpertsOptions layer)
    {
        var fanOut = new ExpertFanOut(remote, local?.Invoker, health, options, time);
        var fallback = local is null ? [] : local.Experts.Where(e => layer.Kind is not { } kind || kind.Accepts(e.Type, e.SchemaHash)).Select(e => e.Uid).ToArray();
        return new MixtureOfExperts(gate, new BeamSearch(directory), directory, fanOut, layer, fallback, incompatible, metrics);
    }
}

/// <summary>The experts a gating node hosts itself, and the invoker that reaches them without the network.</summary>
public sealed record LocalExperts(IExpertInvoker Invoker, IReadOnlyList<LocalExpert> Experts);

/// <summary>One local expert: its uid, type and schema hash.</summary>
public readonly record struct LocalExpert(ExpertUid Uid, string Type, string SchemaHash);
