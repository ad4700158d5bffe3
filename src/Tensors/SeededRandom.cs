namespace MoEMesh.Tensors;

/// <summary>
/// A small, fully specified generator (SplitMix64) so that a seed gives the same weights and the same
/// dropout masks on every machine and .NET version, which <see cref="Random"/> does not promise.
/// </summary>
public sealed class SeededRandom
{
    private ulong _state;

    /// <summary>Creates a generator from a seed.</summary>
    public SeededRandom(ulong seed)
    {
        _state = seed;
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>A float uniform in [0, 1).</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>A standard normal sample (Box–Muller).</summary>
    public float NextGaussian()
    {
        double u1 = 1.0 - (NextUInt64() >> 11) * (1.0 / (1UL << 53));
        double u2 = (NextUInt64() >> 11) * (1.0 / (1UL << 53));
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }

    /// <summary>An integer uniform in [0, <paramref name="maxExclusive"/>).</summary>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxExclusive, 1);
        return (int)(NextUInt64() % (ulong)maxExclusive);
    }

    /// <summary>Shuffles <paramref name="values"/> in place (Fisher–Yates), every order equally likely.</summary>
    public void Shuffle<T>(Span<T> values)
    {
        for (int i = values.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }

    /// <summary>Fills <paramref name="values"/> uniformly from [low, high).</summary>
    public void FillUniform(Span<float> values, float low, float high)
    {
        for (int i = 0; i < values.Length; i++) values[i] = low + (high - low) * NextFloat();
    }

    /// <summary>Fills <paramref name="values"/> from a normal distribution.</summary>
    public void FillNormal(Span<float> values, float mean, float std)
    {
        for (int i = 0; i < values.Length; i++) values[i] = mean + std * NextGaussian();
    }

    /// <summary>
    /// A stateless uniform [0, 1) value for element <paramref name="index"/> under <paramref name="seed"/>:
    /// what dropout masks are made of, so any host can recompute the same mask.
    /// </summary>
    public static float UniformAt(ulong seed, long index) =>
        (Mix(seed ^ Mix((ulong)index + 0x9E3779B97F4A7C15UL)) >> 40) * (1f / (1 << 24));

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
