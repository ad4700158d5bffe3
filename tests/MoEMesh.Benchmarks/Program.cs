using MoEMesh.Benchmarks;

// Usage: dotnet run -c Release --project tests/MoEMesh.Benchmarks -- tensors [--batch 256] [--dim 1024] [--threads N] [--skip-managed]
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
    default:
        Console.Error.WriteLine("usage: MoEMesh.Benchmarks tensors [--batch 256] [--dim 1024] [--threads N] [--skip-managed]");
        return 2;
}
