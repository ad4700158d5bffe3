namespace MoEMesh.Node.Localnet;

/// <summary>A testnet command cannot go on; the message says why in one line. <see cref="ExitCode"/> is 2 for bad input, 3 when nodes did not come up.</summary>
internal sealed class LocalnetException(string message, int exitCode = 2) : Exception(message)
{
    /// <summary>The process exit code to end with.</summary>
    public int ExitCode { get; } = exitCode;
}
