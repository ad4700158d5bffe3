using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Experts;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Gemm;

namespace MoEMesh.Benchmarks;

/// <summary>
/// sgemm through OpenBLAS and the managed kernel at the ffn expert's own GEMM calls, then the ffn expert
/// itself (forward, and forward + backward as one stateless Backward call) at the same shapes. The
/// closing ratio compares the expert with the bare GEMMs it makes, so everything around GEMM (bias,
/// GELU, LayerNorm, residual, allocation) is what the ratio charges.
/// </summary>
public static class TensorsBenchmark
{
    /// <summary>One GEMM call of the ffn expert: op(A) is m × k, op(B) is k × n.</summary>
    private sealed record GemmCall(string Role, int M, int N, int K, bool TransposeA, bool TransposeB)
    {
        public double Flops => 2.0 * M * N * K;

        public override string ToString() => $"{Role,-14} {M}x{N}x{K} {(TransposeA ? 'T' : 'N')}{(TransposeB ? 'T' : 'N')}";
    }

    public static int Run(int batch, int dimension, int? threads, bool skipManaged)
    {
        int inner = 4 * dimension;
        var openBlas = Gemm.Configure(new GemmOptions { Threads = threads }, NullLogger.Instance);
        if (openBlas is not OpenBlasGemm)
        {
            Console.WriteLine("OpenBLAS was not found; install libopenblas0-pthread. The benchmark compares against it.");
            return 1;
        }
        var managed = new ManagedGemm(openBlas.Threads);
        Console.WriteLine($"ffn expert: batch {batch}, d {dimension}, inner {inner}; GEMM threads {openBlas.Threads}; {Environment.ProcessorCount} cores");
        Console.WriteLine();

        // Forward: y1 = x·W1ᵀ, y2 = h·W2ᵀ. Backward: grad of inputs (g·W) and of weights (gᵀ·x) for each layer.
        GemmCall[] forward =
        [
            new("fwd x·W1ᵀ", batch, inner, dimension, false, true),
            new("fwd h·W2ᵀ", batch, dimension, inner, false, true),
        ];
        GemmCall[] backward =
        [
            new("bwd g·W2", batch, inner, dimension, false, false),
            new("bwd gᵀ·h (W2)", dimension, inner, batch, true, false),
            new("bwd g·W1", batch, dimension, inner, false, false),
            new("bwd gᵀ·x (W1)", inner, dimension, batch, true, false),
        ];

        var calls = forward.Concat(backward).ToArray();
        var spec = new ExpertSpec("ffn", dimension, Seed: 1);
        var expert = BuiltInExperts.Ffn(spec);
        using var input = Random([batch, dimension], 2);
        using var gradient = Random([batch, dimension], 3);
        var operands = calls.Select(Operands.For).ToArray();
        try
        {
            // OpenBLAS GEMMs and the expert are timed in the same interleaved rounds; the managed kernel,
            // about four times slower, in rounds of its own.
            var cases = new List<Action>(operands.Select(o => (Action)(() => o.Run(openBlas))))
            {
                () => expert.Forward(input).Dispose(),
                () =>
                {
                    foreach (var p in expert.Parameters) p.ZeroGradient();
                    expert.Backward(input, gradient).Dispose();
                },
            };
            var medians = Measure.InterleavedMedians(cases);
            var managedMedians = skipManaged ? null
                : Measure.InterleavedMedians(operands.Select(o => (Action)(() => o.Run(managed))).ToArray(), rounds: 5, warmup: 1);

            Console.WriteLine($"{"sgemm call",-30} {"openblas GFLOP/s",17} {"managed GFLOP/s",16} {"openblas/managed",17}");
            for (int i = 0; i < calls.Length; i++)
            {
                string slow = managedMedians is null ? $"{"-",16} {"-",17}"
                    : $"{Measure.Gflops(calls[i].Flops, managedMedians[i]),16:F1} {managedMedians[i] / medians[i],17:F2}";
                Console.WriteLine($"{calls[i],-30} {Measure.Gflops(calls[i].Flops, medians[i]),17:F1} {slow}");
            }

            double forwardFlops = forward.Sum(c => c.Flops);
            double trainingFlops = calls.Sum(c => c.Flops);
            double gemmForwardSeconds = medians[0] + medians[1];
            double gemmTrainingSeconds = medians[..calls.Length].Sum();
            double forwardSeconds = medians[calls.Length], trainingSeconds = medians[calls.Length + 1];
            Console.WriteLine();
            Console.WriteLine($"{"ffn expert",-30} {"GFLOP/s",17} {"bare sgemm GFLOP/s",19} {"ratio",8}");
            Report("forward", forwardFlops, forwardSeconds, gemmForwardSeconds);
            Report("forward+backward", trainingFlops, trainingSeconds, gemmTrainingSeconds);
            Console.WriteLine();
            Console.WriteLine("forward+backward is one stateless Backward call: it recomputes the forward, then runs backward (6 GEMMs).");
            double ratio = gemmTrainingSeconds / trainingSeconds;
            Goals.Report("tensors", $"ffn expert forward+backward, batch {batch}, d {dimension}", Goals.Of(Measure.Gflops(trainingFlops, trainingSeconds), "GFLOP/s", "F1"),
                $"bare OpenBLAS sgemm at the same shapes, {Goals.Of(Measure.Gflops(trainingFlops, gemmTrainingSeconds), "GFLOP/s", "F1")}", ratio, ">= 0.80", ratio >= 0.8);
            return 0;
        }
        finally
        {
            foreach (var o in operands) o.Dispose();
        }
    }

    private static void Report(string what, double flops, double seconds, double gemmSeconds) =>
        Console.WriteLine($"{what,-30} {Measure.Gflops(flops, seconds),17:F1} {Measure.Gflops(flops, gemmSeconds),19:F1} {gemmSeconds / seconds,8:F2}");

    /// <summary>Random operands of one GEMM call.</summary>
    private sealed record Operands(GemmCall Call, Tensor A, Tensor B, Tensor C) : IDisposable
    {
        public static Operands For(GemmCall call) => new(call,
            Random(call.TransposeA ? [call.K, call.M] : [call.M, call.K], 4),
            Random(call.TransposeB ? [call.N, call.K] : [call.K, call.N], 5),
            Tensor.Zeros(call.M, call.N));

        public void Run(GemmBackend backend) => backend.MatMul(A, Call.TransposeA, B, Call.TransposeB, C);

        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
            C.Dispose();
        }
    }

    private static Tensor Random(TensorShape shape, ulong seed)
    {
        var t = Tensor.Uninitialized(shape);
        new SeededRandom(seed).FillUniform(t.Span, -1f, 1f);
        return t;
    }
}
