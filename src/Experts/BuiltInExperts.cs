using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;

namespace MoEMesh.Experts;

/// <summary>The expert types every node knows.</summary>
public static class BuiltInExperts
{
    /// <summary>LayerNorm(x + W2·GELU(W1·x)), inner width 4·d: Hivemind's ffn expert.</summary>
    public static IExpert Ffn(ExpertSpec spec)
    {
        var random = new SeededRandom(spec.Seed);
        int d = spec.HiddenDim, inner = spec.EffectiveInnerDim;
        var network = new Sequential(
            new Residual(new Sequential(
                new Linear(d, inner, random, "ffn.w1"),
                new Gelu(),
                new Linear(inner, d, random, "ffn.w2"))),
            new LayerNorm(d, "ffn.norm"));
        return new LayerExpert(network, new ExpertSchema([d], [d]), $"ffn(d={d}, inner={inner})");
    }

    /// <summary>W2·GELU(W1·x): the ffn without residual or normalisation.</summary>
    public static IExpert Mlp(ExpertSpec spec)
    {
        var random = new SeededRandom(spec.Seed);
        int d = spec.HiddenDim, inner = spec.EffectiveInnerDim;
        var network = new Sequential(
            new Linear(d, inner, random, "mlp.w1"),
            new Gelu(),
            new Linear(inner, d, random, "mlp.w2"));
        return new LayerExpert(network, new ExpertSchema([d], [d]), $"mlp(d={d}, inner={inner})");
    }

    /// <summary>The identity on d features.</summary>
    public static IExpert Identity(ExpertSpec spec) => new IdentityExpert(spec.HiddenDim);
}
