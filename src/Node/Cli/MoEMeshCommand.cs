using System.CommandLine;

namespace MoEMesh.Node.Cli;

/// <summary>
/// The command line: <c>node</c> runs the daemon; <c>dht get</c>, <c>dht put</c> and <c>status</c> talk to a
/// running node; <c>train</c>, <c>eval</c>, <c>query</c> and <c>models</c> train, measure, ask and list models.
/// </summary>
internal static class MoEMeshCommand
{
    public static Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("MoEMesh: a peer-to-peer mixture-of-experts network")
        {
            NodeCommand.Create(),
            DhtCommands.Create(),
            StatusCommand.Create(),
            TrainCommand.Create(),
            EvalCommand.Create(),
            QueryCommand.Create(),
            ModelsCommand.Create(),
        };
        // Termination is left to the generic host (it drains and writes checkpoints before exiting);
        // System.CommandLine's own handler would end the process after a fixed timeout.
        return root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }
}
