namespace MoEMesh.Dht.Simulation;

/// <summary>
/// How messages travel in a <see cref="SimulatedNetwork"/>: one-way latency drawn from a log-normal
/// distribution (median <paramref name="MedianLatency"/>, shape <paramref name="LatencySpread"/>), and a
/// chance <paramref name="LossRate"/> that a message in either direction is lost.
/// </summary>
public sealed record SimulatedLinks(TimeSpan MedianLatency, double LatencySpread = 0.5, double LossRate = 0)
{
    /// <summary>50 ms median one way, log-normal shape 0.5, no loss.</summary>
    public static SimulatedLinks Default { get; } = new(TimeSpan.FromMilliseconds(50));

    /// <summary>Draws one one-way latency.</summary>
    public TimeSpan SampleLatency(Random random)
    {
        // Box-Muller: a standard normal from two uniforms.
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        double normal = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
        return TimeSpan.FromTicks((long)(MedianLatency.Ticks * Math.Exp(LatencySpread * normal)));
    }
}
