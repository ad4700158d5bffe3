using MoEMesh.Benchmarks;

// Usage: dotnet run -c Release --project tests/MoEMesh.Benchmarks -- tensors [--batch 256] [--dim 1024] [--threads N] [--skip-managed]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- transport [--round-ms 250]
var verb = args.FirstOrDefault();
int Option(string name, int fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length && int.TryParse(args[at + 1], out int value) ? value : fallback;
}

switch (verb)
{
    case "tensors":
        int? threads = Array.IndexOf(args, "--threads") >= 0 ? Option("--threads", 1) : null;
        return TensorsBenchmark.Run(Option("--batch", 256), Option("--dim", 1024), threads, args.Contains("--skip-managed"));
    case "transport":
        return await TransportBenchmark.RunAsync(TimeSpan.FromMilliseconds(Option("--round-ms", 250)));
    default:
        Console.Error.WriteLine("usage: MoEMesh.Benchmarks tensors [--batch 256] [--dim 1024] [--threads N] [--skip-managed]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks transport [--round-ms 250]");
        return 2;
}
