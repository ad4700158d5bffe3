using System.CommandLine;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Cli;

/// <summary>
/// <c>moemesh eval</c>: fetches a published model from its holders (checked), runs it as a gating client of
/// the swarm over a labelled data file, and prints accuracy, macro-F1, per-domain accuracy, expert
/// utilisation, experts per text, fallback rate, MACs and bytes on the wire per text; as JSON with --json.
/// Columns default to the ones the model was trained from. Exit codes: 0 done, 1 no good copy of the
/// model, 2 bad flags or data, 3 the peer did not answer or no peer holds the model.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var peer = CommonOptions.Peer();
        var noTls = CommonOptions.NoTls();
        var timeout = CommonOptions.Timeout();
        var compression = CommonOptions.Compression();
        var json = CommonOptions.Json();
        var data = new DataOptions();
        var model = new Option<string>("--model") { Description = "The published model's name", Required = true };
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass [64]", DefaultValueFactory = _ => 64 };
        var command = new Command("eval", "Measure a published model on a labelled data file through the swarm") { peer, noTls, timeout, compression, json, model, batchSize };
        data.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            var name = result.GetValue(model)!;
            if (!ModelFile.IsValidName(name, out var error))
            {
                Console.Error.WriteLine($"--model: {error}");
                return 2;
            }
            if (result.GetValue(batchSize) is < 1 or > 4096)
            {
                Console.Error.WriteLine($"--batch-size must be between 1 and 4096; got {result.GetValue(batchSize)}.");
                return 2;
            }
            if (CommonOptions.Routing(result.GetValue(compression)!) is not { } routing) return 2;
            if (!File.Exists(result.GetValue(data.Data)))
            {
                Console.Error.WriteLine($"--data: {result.GetValue(data.Data)} does not exist.");
                return 2;
            }
            var (swarm, exit) = await SwarmClient.JoinAsync(result.GetValue(peer)!, !result.GetValue(noTls), result.GetValue(timeout), routing, null, cancellationToken);
            if (swarm is null) return exit;
            await using (swarm)
            {
                var (fetched, failed) = await swarm.FetchModelAsync(name, cancellationToken);
                if (fetched is null) return failed;
                var spec = fetched.Model.Spec;
                var log = result.GetValue(json) ? Console.Error : Console.Out;
                log.WriteLine($"{name} version {fetched.Model.Version} from {fetched.Source.Host}: {spec.Layers.Count} layer(s) on {spec.Layers[0].GridName}, {spec.Head.Labels.Count} labels");
                if (data.Read(result, result.GetValue(data.Data)!, data.Columns(result, spec.Data), log) is not { } file) return 2;
                var moe = new MoEModel(spec, fetched.Model.Weights, swarm.MixtureFactory.Create);
                var report = await new ModelEvaluator(moe).EvaluateAsync(file.Examples, result.GetValue(batchSize), () => swarm.Transport.Bytes, cancellationToken);
                if (result.GetValue(json)) Console.WriteLine(EvaluationView.ToJson(report));
                else EvaluationView.Print(report);
                return 0;
            }
        });
        return command;
    }
}
