using System.Diagnostics;

namespace MoEMesh.Benchmarks;

/// <summary>
/// Wall-clock measurement for benchmarks (never used in tests). Cases compared with each other are
/// timed in interleaved rounds, one call of each per round, and each case reports its median over the
/// rounds: on a shared virtual machine whose second core comes and goes, timing case A for a while and
/// then case B would compare the machine's moods, not the code.
/// </summary>
public static class Measure
{
    /// <summary>Median seconds per call of each case, over <paramref name="rounds"/> interleaved rounds after <paramref name="warmup"/>.</summary>
    public static double[] InterleavedMedians(IReadOnlyList<Action> cases, int rounds = 21, int warmup = 3)
    {
        for (int w = 0; w < warmup; w++)
            foreach (var c in cases) c();
        var samples = new double[cases.Count][];
        for (int i = 0; i < cases.Count; i++) samples[i] = new double[rounds];
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < cases.Count; i++)
            {
                long start = Stopwatch.GetTimestamp();
                cases[i]();
                samples[i][r] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            }
        return samples.Select(s =>
        {
            Array.Sort(s);
            return s[rounds / 2];
        }).ToArray();
    }

    /// <summary>GFLOP/s for <paramref name="flops"/> floating-point operations in <paramref name="seconds"/>.</summary>
    public static double Gflops(double flops, double seconds) => flops / seconds / 1e9;
}
