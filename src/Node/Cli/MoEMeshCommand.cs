using System.CommandLine;

namespace MoEMesh.Node.Cli;

/// <summary>
/// The command line: <c>node</c> runs the daemon; <c>dht get</c>, <c>dht put</c> and <c>status</c> talk to a
/// running node; <c>train</c>, <c>eval</c>, <c>query</c> and <c>models</c> train, measure, ask and list models;
/// <c>localnet</c> runs a testnet of node processes on this machine.
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
            DoctorCommand.Create(),
            TrainCommand.Create(),
            ExpertCommand.Create(),
            EvalCommand.Create(),
            QueryCommand.Create(),
            ModelsCommand.Create(),
            Localnet.LocalnetCommand.Create(),
        };
        // Termination is left to the generic host (it drains and writes checkpoints before exiting);
        // System.CommandLine's own handler would end the process after a fixed timeout.
        var configuration = new InvocationConfiguration { ProcessTerminationTimeout = null };
        if (args.Length == 0)
        {
            root.Parse(["--help"]).Invoke(configuration);
            return Task.FromResult(2);
        }
        var parsed = root.Parse(args);
        if (parsed.Errors.Count == 0) return parsed.InvokeAsync(configuration);
        // Bad flags: what is wrong, one line each, and where the flags are listed (exit 2, as for bad values).
        var errors = parsed.Errors.Select(e => e.Message).ToList();
        // A mistyped verb also trips "Required command was not provided": the unrecognized word says it better.
        if (errors.Count > 1) errors.Remove("Required command was not provided.");
        foreach (var error in errors) Console.Error.WriteLine(InWords(error));
        var verbs = new List<string>();
        for (var command = parsed.CommandResult; command is not null && command.Command != root; command = command.Parent as System.CommandLine.Parsing.CommandResult)
            verbs.Insert(0, command.Command.Name);
        Console.Error.WriteLine($"`{string.Join(' ', ["moemesh", .. verbs, "--help"])}` lists the {(verbs.Count == 0 ? "verbs" : "flags")}.");
        return Task.FromResult(2);
    }

    /// <summary>System.CommandLine's "Cannot parse argument 'x' for option '--n' as expected type 'System.Int32'", without .NET type names.</summary>
    internal static string InWords(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, @"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'\.?$");
        if (!match.Success) return message;
        string kind = Type.GetType(match.Groups["type"].Value) is { } type ? Words.Kind(type) : "of the kind the option takes";
        return $"{match.Groups["option"].Value}: '{match.Groups["value"].Value}' is not {kind}.";
    }
}
