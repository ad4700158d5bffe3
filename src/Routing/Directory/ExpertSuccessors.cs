using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Routing.Directory;

/// <summary>
/// The live children of one prefix: for each next coordinate, one live uid under it. From
/// <c>prefix:ffn.3.</c> → {14: ffn.3.14, 2: ffn.3.2.7, ...}.
/// </summary>
public sealed record ExpertSuccessors(ExpertPrefix Prefix, IReadOnlyDictionary<int, ExpertUid> Children)
{
    /// <summary>No live child.</summary>
    public bool IsEmpty => Children.Count == 0;
}
