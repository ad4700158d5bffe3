using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Node.Doctor;

/// <summary>What the doctor checks against: the node's ports, the peers to ask, the checkpoint folder.</summary>
/// <param name="Listen">The peer port the node would listen on.</param>
/// <param name="Http">The HTTP port the node would serve.</param>
/// <param name="Announce">The address the node would announce; null: the one peers see, at the listen port.</param>
/// <param name="Peers">Peers to join through and ask to dial back.</param>
/// <param name="UseTls">TLS as the swarm's nodes run it.</param>
/// <param name="CheckpointDirectory">Where checkpoints would go.</param>
/// <param name="MinFreeBytes">Free space below which the disk check fails.</param>
/// <param name="OpenBlasPath">An OpenBLAS library to try first (the node's --openblas).</param>
/// <param name="Timeout">How long the network checks may take together.</param>
public sealed record DoctorSettings(PeerAddress Listen, PeerAddress Http, PeerAddress? Announce, IReadOnlyList<PeerEndpoint> Peers, bool UseTls, string CheckpointDirectory,
    long MinFreeBytes, string? OpenBlasPath, TimeSpan Timeout);
