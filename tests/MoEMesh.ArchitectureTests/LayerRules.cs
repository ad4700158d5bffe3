namespace MoEMesh.ArchitectureTests;

/// <summary>
/// The allowed references of docs/architecture.md as code. An arrow means "may reference",
/// and what an assembly may reference is everything reachable along arrows from it:
/// <code>
/// Node ──► Routing ──► Dht ──► Protocol ──► Tensors
///   │         └──────────────► Protocol ──► Settings
///   └──► Experts ─────────────────────────► Tensors
///                  └──────────────────────► Settings
/// </code>
/// </summary>
public static class LayerRules
{
    /// <summary>The arrows, per assembly.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Arrows = new Dictionary<string, string[]>
    {
        ["MoEMesh.Node"] = ["MoEMesh.Routing", "MoEMesh.Experts"],
        ["MoEMesh.Routing"] = ["MoEMesh.Dht", "MoEMesh.Protocol"],
        ["MoEMesh.Dht"] = ["MoEMesh.Protocol"],
        ["MoEMesh.Protocol"] = ["MoEMesh.Tensors", "MoEMesh.Settings"],
        ["MoEMesh.Experts"] = ["MoEMesh.Tensors", "MoEMesh.Settings"],
        ["MoEMesh.Tensors"] = [],
        ["MoEMesh.Settings"] = [],
    };

    /// <summary>Every MoEMesh assembly <paramref name="assembly"/> may reference.</summary>
    public static IReadOnlySet<string> Allowed(string assembly)
    {
        if (!Arrows.ContainsKey(assembly))
            throw new ArgumentException($"{assembly} has no entry in the architecture's allow-list; add it to LayerRules and docs/architecture.md.");
        var allowed = new HashSet<string>();
        var pending = new Stack<string>(Arrows[assembly]);
        while (pending.Count > 0)
        {
            var next = pending.Pop();
            if (allowed.Add(next))
                foreach (var further in Arrows[next]) pending.Push(further);
        }
        return allowed;
    }

    /// <summary>The references of <paramref name="assembly"/> that break the rules, each explained.</summary>
    public static IEnumerable<string> Violations(string assembly, IEnumerable<string> references)
    {
        var allowed = Allowed(assembly);
        return references
            .Where(r => r.StartsWith("MoEMesh.", StringComparison.Ordinal) && r != assembly && !allowed.Contains(r))
            .Select(r => $"{assembly} references {r}, which it may not (allowed: {(allowed.Count == 0 ? "nothing of ours" : string.Join(", ", allowed.Order()))}).");
    }
}
