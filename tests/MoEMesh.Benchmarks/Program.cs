using MoEMesh.Benchmarks;

// Usage: dotnet run -c Release --project tests/MoEMesh.Benchmarks -- tensors [--batch 256] [--dim 1024] [--threads N] [--skip-managed]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- small [--dims 256,1024] [--batches 1,4,8,16] [--threads N]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- transport [--round-ms 250]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- relay [--round-ms 500]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- node [--round-ms 3000] [--rounds 3]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- moe [--rounds 3] [--calls 20] [--blas-threads 1,2]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- replicas [--forwards 300]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- restart [--rounds 3] [--dim 1024]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- dht [--nodes 100,1000,5000] [--kill 0,10,30,50] [--rounds 10] [--keys 20] [--seed 1]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- durability [--nodes 100,1000] [--records 200] [--seed 1]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- query [--rounds 3] [--seconds 5] [--linger-ms 2] [--blas-threads 1]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- abuse [--honest-calls 1000]
//        dotnet run -c Release --project tests/MoEMesh.Benchmarks -- soak [--minutes 10] [--nodes 6] [--steps 1000] [--fuzz 100000] [--seed 1] [--out docs/reliability.md]   (scripts/soak)
var verb = args.FirstOrDefault();
int Option(string name, int fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length && int.TryParse(args[at + 1], out int value) ? value : fallback;
}

int[] List(string name, int[] fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1].Split(',').Select(int.Parse).ToArray() : fallback;
}

switch (verb)
{
    case "tensors":
        int? threads = Array.IndexOf(args, "--threads") >= 0 ? Option("--threads", 1) : null;
        return TensorsBenchmark.Run(Option("--batch", 256), Option("--dim", 1024), threads, args.Contains("--skip-managed"));
    case "small":
        return SmallBatchBenchmark.Run(List("--dims", [256, 1024]), List("--batches", [1, 4, 8, 16]), Array.IndexOf(args, "--threads") >= 0 ? Option("--threads", 1) : null);
    case "transport":
        return await TransportBenchmark.RunAsync(TimeSpan.FromMilliseconds(Option("--round-ms", 250)));
    case "relay":
        return await RelayBenchmark.RunAsync(TimeSpan.FromMilliseconds(Option("--round-ms", 500)));
    case "node":
        return await NodeBenchmark.RunAsync(TimeSpan.FromMilliseconds(Option("--round-ms", 3000)), Option("--rounds", 3));
    case "moe":
        return await MoEBenchmark.RunAsync(Option("--rounds", 3), Option("--calls", 20), List("--blas-threads", [1, 2]));
    case "replicas":
        return await ReplicaBenchmark.RunAsync(Option("--forwards", 300));
    case "restart":
        return await RestartBenchmark.RunAsync(Option("--rounds", 3), Option("--dim", 1024));
    case "dht":
        return DhtBenchmark.Run(List("--nodes", [100, 1000, 5000]), List("--kill", [0, 10, 30, 50]).Select(p => p / 100.0).ToArray(),
            Option("--rounds", 10), Option("--keys", 20), Option("--seed", 1));
    case "durability":
        return DurabilityBenchmark.Run(List("--nodes", [100, 1000]), Option("--records", 200), Option("--seed", 1));
    case "query":
        return await QueryBenchmark.RunAsync(Option("--rounds", 3), TimeSpan.FromSeconds(Option("--seconds", 5)),
            Array.IndexOf(args, "--linger-ms") >= 0 ? TimeSpan.FromMilliseconds(Option("--linger-ms", 2)) : null, Option("--blas-threads", 1));
    case "abuse":
        return await AbuseBenchmark.RunAsync(Option("--honest-calls", 1000));
    case "soak":
        int outAt = Array.IndexOf(args, "--out");
        return await MoEMesh.Benchmarks.Soak.SoakRun.MainAsync(Option("--minutes", 10), Option("--nodes", 6), Option("--steps", 1000), Option("--fuzz", 100_000), Option("--seed", 1),
            outAt >= 0 && outAt + 1 < args.Length ? args[outAt + 1] : Path.Combine(MoEMesh.Testing.RepositoryRoot.Path, "docs", "reliability.md"));
    default:
        Console.Error.WriteLine("usage: MoEMesh.Benchmarks tensors [--batch 256] [--dim 1024] [--threads N] [--skip-managed]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks small [--dims 256,1024] [--batches 1,4,8,16] [--threads N]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks transport [--round-ms 250]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks relay [--round-ms 500]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks node [--round-ms 3000] [--rounds 3]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks moe [--rounds 3] [--calls 20] [--blas-threads 1,2]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks replicas [--forwards 300]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks restart [--rounds 3] [--dim 1024]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks dht [--nodes 100,1000,5000] [--kill 0,10,30,50] [--rounds 10] [--keys 20] [--seed 1]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks durability [--nodes 100,1000] [--records 200] [--seed 1]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks query [--rounds 3] [--seconds 5] [--linger-ms 2] [--blas-threads 1]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks soak [--minutes 10] [--nodes 6] [--steps 1000] [--fuzz 100000] [--seed 1] [--out docs/reliability.md]");
        Console.Error.WriteLine("       MoEMesh.Benchmarks abuse [--honest-calls 1000]");
        return 2;
}
