using MoEMesh.Routing.Models;
using MoEMesh.Tensors;

namespace MoEMesh.Node.Cli;

/// <summary>A seeded split stratified by label: from each label's examples (in a seeded order) the given share goes to evaluation.</summary>
internal static class EvalSplit
{
    /// <summary>Splits <paramref name="examples"/>; a label with one example stays in training.</summary>
    public static (IReadOnlyList<Example> Train, IReadOnlyList<Example> Eval) Of(IReadOnlyList<Example> examples, double share, ulong seed)
    {
        var random = new SeededRandom(seed);
        var train = new List<Example>();
        var eval = new List<Example>();
        foreach (var group in examples.GroupBy(e => e.Label, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var items = group.ToArray();
            random.Shuffle<Example>(items);
            int take = items.Length < 2 ? 0 : Math.Clamp((int)Math.Round(share * items.Length), 1, items.Length - 1);
            eval.AddRange(items[..take]);
            train.AddRange(items[take..]);
        }
        return (train, eval);
    }
}
