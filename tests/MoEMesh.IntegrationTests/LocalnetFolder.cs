namespace MoEMesh.IntegrationTests;

/// <summary>
/// A temporary folder for a test of <c>moemesh localnet</c>, its testnet under <c>run/</c>; disposing it
/// stops whatever a failed test left running there and deletes the folder.
/// </summary>
public abstract class LocalnetFolder(string prefix) : IAsyncLifetime
{
    /// <summary>How long any one verb may take.</summary>
    protected static readonly TimeSpan Bound = TimeSpan.FromMinutes(5);

    /// <summary>The folder.</summary>
    protected string Dir { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    /// <summary>The testnet's run directory.</summary>
    protected string RunDir => Path.Combine(Dir, "run");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await CliRun.RunAsync(Dir, Bound, "localnet", "down", "--run-dir", RunDir);
        Directory.Delete(Dir, recursive: true);
    }

    /// <summary>Runs <c>moemesh localnet ARGS --run-dir RUN</c>.</summary>
    private protected Task<CliRun> Localnet(params string[] args) => CliRun.RunAsync(Dir, Bound, ["localnet", .. args, "--run-dir", RunDir]);
}
