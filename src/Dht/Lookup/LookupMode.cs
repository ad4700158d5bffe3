namespace MoEMesh.Dht.Lookup;

/// <summary>When a lookup for a key is finished.</summary>
internal enum LookupMode
{
    /// <summary>When the k nearest nodes known have all answered or failed (for stores, joins, refreshes).</summary>
    FindNodes,

    /// <summary>At the first node that returns a valid unexpired value, else as <see cref="FindNodes"/>.</summary>
    GetFirst,

    /// <summary>As <see cref="FindNodes"/>, merging every value found along the way (latest per subkey).</summary>
    GetLatest,
}

/// <summary>What a lookup found for one key.</summary>
/// <param name="Nearest">Nodes that answered, nearest first, at most k.</param>
/// <param name="Value">The merged value, or null.</param>
/// <param name="Rounds">Hops from us to the node that gave the value (first-value mode) or to the deepest node that answered.</param>
/// <param name="Rpcs">Find RPCs that carried this key.</param>
internal sealed record LookupResult(IReadOnlyList<Ids.DhtContact> Nearest, Records.DhtValue? Value, int Rounds, int Rpcs);
