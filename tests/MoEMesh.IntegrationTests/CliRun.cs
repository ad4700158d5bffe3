namespace MoEMesh.IntegrationTests;

/// <summary>One run of a moemesh CLI verb as its own process: exit code, stdout and stderr.</summary>
internal sealed record CliRun(int ExitCode, string Out, string Error)
{
    /// <summary>Runs <c>moemesh ARGS</c> in <paramref name="workDir"/> and waits for it, within <paramref name="limit"/>.</summary>
    public static Task<CliRun> RunAsync(string workDir, TimeSpan limit, params string[] args) => RunInAsync(null, workDir, limit, args);

    /// <summary>Runs <c>moemesh ARGS</c> inside the network namespace <paramref name="networkNamespace"/> (when not null) and waits for it.</summary>
    public static async Task<CliRun> RunInAsync(string? networkNamespace, string workDir, TimeSpan limit, params string[] args)
    {
        using var process = Testing.MoEMeshProcess.Launch(workDir, args, networkNamespace);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"moemesh {string.Join(' ', args)} did not finish within {limit}:\n{await output}\n{await error}");
        }
        return new CliRun(process.ExitCode, await output, await error);
    }

    /// <inheritdoc />
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Out}\n--- stderr\n{Error}";
}
