using MoEMesh.Settings;

namespace MoEMesh.Routing;

/// <summary>How a mixture-of-experts layer picks and calls experts.</summary>
public sealed class MixtureOfExpertsOptions
{
    /// <summary>Experts per sample at most (top-k). Default 2.</summary>
    [Count]
    public int K { get; set; } = 2;

    /// <summary>
    /// Dynamic top-p: of the K best, take experts in score order until their softmax mass reaches P, so
    /// easy inputs use fewer experts. Null for plain top-k. Default null.
    /// </summary>
    [Fraction]
    public double? TopP { get; set; }

    /// <summary>Prefixes beam search expands per sample per DHT round. Default 4.</summary>
    [Count]
    public int BeamWidth { get; set; } = 4;

    /// <summary>Auxiliary router losses (load balance 0.01, z-loss 0.001, both entropies 0); null switches them off.</summary>
    public Gating.RouterLossWeights? RouterLosses { get; set; } = new();

    /// <summary>
    /// The kind of expert the layer needs (type and width). Hosts announcing another type or schema under
    /// a uid of the grid are skipped as incompatible and never called, and beam search passes over uids
    /// with no compatible host. Null accepts every host. Default null.
    /// </summary>
    public Directory.ExpertKind? Kind { get; set; }

    /// <summary>
    /// Whether the experts stay as they are while the layer trains: backward asks them for the input
    /// gradient only (any peer may), so the gate, and what lies before the layer, learn to use the experts
    /// as their contributors trained them. Default false: each expert steps on its host.
    /// </summary>
    public bool FreezeExperts { get; set; }

    /// <summary>
    /// Whether a sample no expert answered for (and no local one could stand in for) gets zeros instead of
    /// failing the forward: set when a shared expert beside the layer answers for every sample. Default false.
    /// </summary>
    public bool AllowUnanswered { get; set; }
}
