using MoEMesh.Protocol.Identity;

namespace MoEMesh.Node.Serving;

/// <summary>Rules for expert requests arriving from the network (the "MoEMesh:Serving" section).</summary>
public sealed class ExpertServingOptions
{
    /// <summary>Refuse inputs and gradients holding NaN or Inf (InvalidArgument). Default true.</summary>
    public bool RejectNonFinite { get; set; } = true;

    /// <summary>
    /// Let every peer train this node's experts (<c>expert.backward</c>): for an open training swarm, such
    /// as a local testnet. Default false: forward calls are open to all, training only to
    /// <see cref="TrainingPeers"/>, since any gradient a peer sends moves the weights everyone uses.
    /// </summary>
    public bool OpenTraining { get; set; }

    /// <summary>PeerIds allowed to train this node's experts when <see cref="OpenTraining"/> is off. Default none.</summary>
    [PeerId]
    public List<string> TrainingPeers { get; set; } = [];

    /// <summary>Whether <paramref name="caller"/> may train this node's experts.</summary>
    public bool AllowsTraining(PeerId caller) => OpenTraining || TrainingPeers.Contains(caller.ToString(), StringComparer.Ordinal);
}
