using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Experts;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Gemm;

namespace MoEMesh.Benchmarks;

/// <summary>
/// The ffn expert's forward at the batches a query brings (1 to 16 rows), against the time it takes to read
/// the expert's weights once (a vectorised sum over every weight array, split between threads as the kernel
/// splits the product), and against the same forward with
/// its GEMMs left to OpenBLAS (the small-batch kernel off; it takes up to 8 rows, so at 16 both columns are
/// OpenBLAS), in interleaved rounds. At d = 256 the weights
/// (2 MiB) stay in the CPU's caches, so reading them is far quicker than the arithmetic of 16 rows: there the
/// ratio shows the compute, not the memory.
/// </summary>
public static class SmallBatchBenchmark
{
    /// <summary>A vectorised sum over <paramref name="weights"/>, in <paramref name="threads"/> parts from 2^20 elements on (the kernel's rule).</summary>
    private static float Read(Tensor weights, int threads)
    {
        int length = weights.Span.Length;
        if (length < 1 << 20 || threads == 1) return TensorPrimitives.Sum(weights.Span);
        var parts = new float[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads },
            t => parts[t] = TensorPrimitives.Sum(weights.Span.Slice(length * t / threads, length * (t + 1) / threads - length * t / threads)));
        return parts.Sum();
    }

    public static int Run(int[] dimensions, int[] batches, int? threads)
    {
        var gemm = Gemm.Configure(new GemmOptions { Threads = threads }, NullLogger.Instance);
        if (gemm is not OpenBlasGemm)
        {
            Console.WriteLine("OpenBLAS was not found; install libopenblas0-pthread. The benchmark compares against it.");
            return 1;
        }
        Console.WriteLine($"ffn expert forward at small batches; GEMM threads {gemm.Threads}; {Environment.ProcessorCount} cores; Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");
        Console.WriteLine($"{"d",5} {"batch",6} {"read weights ms",16} {"forward ms",11} {"OpenBLAS ms",12} {"forward/read",13} {"OpenBLAS/forward",17}");
        var results = new List<(int D, int Batch, double Read, double Forward, double Blas)>();
        foreach (int d in dimensions)
        {
            var expert = BuiltInExperts.Ffn(new ExpertSpec("ffn", d, Seed: 1));
            var weights = expert.Parameters.Select(p => p.Value).ToArray();
            foreach (int batch in batches)
            {
                using var input = Tensor.Uninitialized([batch, d]);
                new SeededRandom(2).FillUniform(input.Span, -1f, 1f);
                float sink = 0;
                var cases = new Action[]
                {
                    () =>
                    {
                        // Read as the kernel reads: a weight matrix of a million elements or more split between the GEMM threads.
                        foreach (var w in weights) sink += Read(w, gemm.Threads);
                    },
                    () =>
                    {
                        gemm.SmallBatchKernel = true;
                        expert.Forward(input).Dispose();
                    },
                    () =>
                    {
                        gemm.SmallBatchKernel = false;
                        expert.Forward(input).Dispose();
                        gemm.SmallBatchKernel = true;
                    },
                };
                // Warm-up for about two seconds: every case, the reference's sum included, must reach the JIT's optimised tier first.
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                while (System.Diagnostics.Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(2))
                    foreach (var c in cases) c();
                var m = Measure.InterleavedMedians(cases, rounds: 41, warmup: 0);
                results.Add((d, batch, m[0], m[1], m[2]));
                Console.WriteLine($"{d,5} {batch,6} {m[0] * 1e3,16:F3} {m[1] * 1e3,11:F3} {m[2] * 1e3,12:F3} {m[1] / m[0],13:F2} {m[2] / m[1],17:F2}{(float.IsNaN(sink) ? " " : "")}");
            }
        }
        Console.WriteLine();
        foreach (var (d, batch, read, forward, blas) in results)
        {
            double ratio = forward / read;
            Goals.Report("small", $"ffn expert forward, batch {batch}, d {d}", Goals.Of(forward * 1e3, "ms", "F3"),
                $"reading its weights once, {Goals.Of(read * 1e3, "ms", "F3")} (OpenBLAS GEMMs: {Goals.Of(blas * 1e3, "ms", "F3")})", ratio, "<= 1.5", ratio <= 1.5);
        }
        return 0;
    }
}
