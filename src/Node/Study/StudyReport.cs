using System.Globalization;
using System.Text;

namespace MoEMesh.Node.Study;

/// <summary>The study's results as Markdown: one table per experiment (mean ± sd over seeds), the commands behind them, and whether MoECollab's directions held.</summary>
internal static class StudyReport
{
    public static string Render(StudyPlan plan, string commonCommand, IReadOnlyList<StudyResult> results, DateTimeOffset finished, TimeSpan? took)
    {
        var c = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        var of = results.GroupBy(r => r.Config).ToDictionary(g => g.Key, g => g.ToArray());
        string Cell(string config, Func<StudyResult, double?> value, string format, double scale = 1)
        {
            var values = of[config].Select(value).OfType<double>().Select(v => v * scale).ToArray();
            if (values.Length == 0) return "-";
            double mean = values.Average();
            double sd = values.Length < 2 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1));
            return values.Length < 2 ? mean.ToString(format, c) : $"{mean.ToString(format, c)} ± {sd.ToString(format, c)}";
        }
        double Mean(string config, Func<StudyResult, double?> value) => of[config].Select(value).OfType<double>().DefaultIfEmpty(double.NaN).Average();
        string Flags(StudyConfig config) => config.Flags.Length == 0 ? "(none)" : $"`{string.Join(' ', config.Flags)}`";

        var domains = results.SelectMany(r => r.DomainF1.Keys).Distinct().Order(StringComparer.Ordinal).ToArray();
        double? F1Of(StudyResult r, string domain) => r.DomainF1.TryGetValue(domain, out double f) ? f : null;
        md.AppendLine("# Results: the MoECollab study on MoEMesh");
        md.AppendLine();
        md.AppendLine(string.Create(c, $"Written by `scripts/study{(plan.Tiny ? " --tiny" : "")} --seeds {plan.Seeds}` on {finished:yyyy-MM-dd HH:mm} UTC, on a machine of {Environment.ProcessorCount} cores{(took is { } t ? $", in {Words.Duration(t)}" : "")} (`--report-only` writes this page again from the models it left). ")
            + string.Create(c, $"Every model trains as a gating client against a testnet of its own, started afresh for it: {plan.Nodes} `moemesh node` processes on loopback hosting the grid ffn {plan.GridSide}x{plan.GridSide} "
            + $"({plan.Experts} experts of width d = {plan.Width}, inner {plan.ExpertInner}, each on two nodes unless its row says one), so every model meets the experts as they were made; "
            + $"it is measured on the test file. Figures are the mean ± sample standard deviation over "
            + $"{plan.Seeds} seed{(plan.Seeds == 1 ? "" : "s")} (the seed sets the initial weights and the batch order; the data files are fixed)."));
        md.AppendLine();
        md.AppendLine("Every model:");
        md.AppendLine();
        md.AppendLine($"```\n{commonCommand}\n```");
        md.AppendLine();
        md.AppendLine("with the flags in its row. MACs per text are multiply-accumulates (trunk rows, gates, experts or dense layer, head) as `eval` counts them; bytes on the wire are everything the trainer's evaluation sent and received.");

        void Table(string experiment, string title, IReadOnlyList<string> headers, Func<StudyConfig, string[]> cells)
        {
            md.AppendLine();
            md.AppendLine($"## {experiment}. {title}");
            md.AppendLine();
            md.AppendLine($"| {string.Join(" | ", headers)} |");
            md.AppendLine($"|{string.Concat(headers.Select((_, i) => i < 2 ? "---|" : "---:|"))}");
            foreach (var config in plan.Configs.Where(x => x.Experiment == experiment || (experiment != "1" && x.Name == "moe")))
                md.AppendLine($"| {string.Join(" | ", cells(config))} |");
        }

        Table("1", "MoE against dense models of equal MACs and of equal parameters", ["model", "flags", "accuracy %", "macro-F1", "MACs per text", "bytes per text"],
            x => [x.Description, Flags(x), Cell(x.Name, r => r.Accuracy, "F2", 100), Cell(x.Name, r => r.MacroF1, "F4"), Cell(x.Name, r => r.MacsPerText, "N0"), Cell(x.Name, r => r.BytesPerText, "N0")]);
        double moe = Mean("moe", r => r.Accuracy) * 100, flops = Mean("dense-flops", r => r.Accuracy) * 100, parameters = Mean("dense-params", r => r.Accuracy) * 100;
        double macsShare = Mean("moe", r => r.MacsPerText) / Mean("dense-params", r => r.MacsPerText);
        bool held = moe - Math.Max(flops, parameters) >= 3 && macsShare <= 0.66;
        md.AppendLine();
        md.AppendLine(string.Create(c, $"MoE minus the equal-MACs dense model: {moe - flops:+0.00;-0.00} points; minus the equal-parameters one: {moe - parameters:+0.00;-0.00} points, ")
            + string.Create(c, $"at {macsShare:P0} of its MACs per text. ") + "MoECollab's direction (MoE ahead by 3 points or more at no more than 66 % of the larger dense model's MACs): "
            + (held ? "**holds** here." : "**does not hold** here."));

        Table("2", "Router losses and expert utilisation", ["router losses", "flags", "utilisation H(load)/log(E)", "experts ranked first", "accuracy %", "specialisation"],
            x => [x.Description, Flags(x), Cell(x.Name, r => r.Utilisation, "F3"), Cell(x.Name, r => r.ExpertsRankedFirst, "F1"), Cell(x.Name, r => r.Accuracy, "F2", 100), Cell(x.Name, r => r.Specialisation, "F3")]);
        double off = Mean("losses-off", r => r.Utilisation);
        md.AppendLine();
        md.AppendLine("Utilisation relative to no router loss: " + string.Join("; ", plan.Configs.Where(x => x.Experiment == "2" && x.Name != "losses-off").Append(plan.Configs[0])
            .Select(x => string.Create(c, $"{x.Description} {(Mean(x.Name, r => r.Utilisation) / off - 1) * 100:+0;-0} %")))
            + ". MoECollab's direction (entropy regularisation raises utilisation by 14 % relative or more): "
            + (Mean("marginal-entropy", r => r.Utilisation) / off - 1 >= 0.14 ? "**holds** for the batch-marginal entropy here." : "**does not hold** for the batch-marginal entropy here.")
            + " The `moe` row is the default: load balance 0.01 and z-loss 0.001.");

        Table("3", "Contributors' domain experts against experts trained jointly", [.. (string[])["experts", "flags", "accuracy %", "macro-F1"], .. domains.Select(d => $"F1 {d}"), "specialisation"],
            x => [x.Description, Flags(x), Cell(x.Name, r => r.Accuracy, "F2", 100), Cell(x.Name, r => r.MacroF1, "F4"), .. domains.Select(d => Cell(x.Name, r => F1Of(r, d), "F4")), Cell(x.Name, r => r.Specialisation, "F3")]);
        md.AppendLine();
        md.AppendLine($"`BASE` is the file of the same seed's `{StudyPlan.BaseConfig}` model (experiment 1), trained on the joint data: the published base model whose trunk everyone here shares, kept as it is. "
            + "Each domain's contributors own grid rows in proportion to its training texts (one row at least) and train each expert of their rows with "
            + $"`moemesh expert train --uid UID --domain DOMAIN --data SHARD --trunk-from BASE {string.Join(' ', plan.Length)} --seed S` on a shard of their domain's texts alone "
            + "(the domain's texts dealt out in turn among its experts); the checkpoints go to the nodes that host those uids, which serve them as they are. "
            + "The gate then learns to route between them with the experts frozen (`--freeze-experts`) or fine-tuned beside it; the `moe` row trains its own trunk and its experts from scratch.");
        string[] contributedConfigs = [.. ((string[])["contrib-frozen", "contrib-tuned"]).Where(of.ContainsKey)];
        if (of.ContainsKey("joint-base") && contributedConfigs.Length > 0 && domains.Length > 0)
        {
            double Better(string d) => contributedConfigs.Max(x => Mean(x, r => F1Of(r, d)));
            md.AppendLine();
            md.AppendLine("Per domain, the better contributed model's macro-F1 against the jointly trained experts' on the same trunk: "
                + string.Join("; ", domains.Select(d => string.Create(c, $"{d} {Better(d):F4} against {Mean("joint-base", r => F1Of(r, d)):F4} ({Better(d) - Mean("joint-base", r => F1Of(r, d)):+0.0000;-0.0000})")))
                + ". MoECollab's direction (domain experts raise their domains' scores): "
                + (domains.All(d => Better(d) > Mean("joint-base", r => F1Of(r, d))) ? "**holds** in every domain here." : "**does not hold** in every domain here."));
        }

        Table("4", "Dynamic top-p against fixed top-2", ["routing", "flags", "experts per text", "accuracy %", "MACs per text"],
            x => [x.Description, Flags(x), Cell(x.Name, r => r.ExpertsPerText, "F2"), Cell(x.Name, r => r.Accuracy, "F2", 100), Cell(x.Name, r => r.MacsPerText, "N0")]);

        md.AppendLine();
        md.AppendLine("## 5. Nodes down: MoE with and without a shared expert and replicas");
        md.AppendLine();
        md.AppendLine($"Each model, once trained, measured again on its testnet right after {string.Join(" and then ", plan.DownShares.Select(s => string.Create(c, $"{(int)Math.Ceiling(s * plan.Nodes)} of the {plan.Nodes} nodes")))} "
            + "were killed (SIGKILL, never the node the evaluation joins through; the same nodes for every model). With two hosts an expert is lost only when both are down; with one, when its host is. "
            + "The evaluating client hosts no experts, so a text none of whose chosen experts answers gets no answer (counted wrong) unless a shared expert answers for it.");
        md.AppendLine();
        md.AppendLine("| model | hosts per expert | nodes down | accuracy % | texts without an answer % | experts per text |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var model in plan.DownModels)
        {
            var config = plan.Configs.Single(x => x.Name == model);
            foreach (var (share, name) in plan.DownShares.Select(s => (s, Study.StudyRunner.DownName(model, s))).Prepend((0.0, model)))
                if (of.ContainsKey(name))
                    md.AppendLine($"| {config.Description} | {config.Hosts} | {(int)Math.Ceiling(share * plan.Nodes)} of {plan.Nodes} | {Cell(name, r => r.Accuracy, "F2", 100)} | {Cell(name, r => r.Unanswered, "F2", 100)} | {Cell(name, r => r.ExpertsPerText, "F2")} |");
        }

        if (domains.Length > 0)
        {
            md.AppendLine();
            md.AppendLine("## Macro-F1 per domain");
            md.AppendLine();
            md.AppendLine($"| model | {string.Join(" | ", domains)} |");
            md.AppendLine($"|---|{string.Concat(domains.Select(_ => "---:|"))}");
            foreach (var x in plan.Configs.Where(x => of.ContainsKey(x.Name)))
                md.AppendLine($"| {x.Name} | {string.Join(" | ", domains.Select(d => Cell(x.Name, r => F1Of(r, d), "F4")))} |");
        }
        md.AppendLine();
        md.AppendLine("## What these figures do and do not say");
        md.AppendLine();
        md.AppendLine("- The dense models are not the experts' architecture run densely. A dense layer is `w2 · GELU(w1 · h)` trained by the trainer's Adam "
            + "(learning rate 0.01); an ffn expert is `LayerNorm(h + w2 · GELU(w1 · h))` trained on its host by its own Adam (0.001, gradients clipped to norm 1). "
            + "Part of the gap in experiment 1 may come from that, not from routing.");
        md.AppendLine("- Each model sees the training data once (one epoch): the models are not trained to convergence, and a longer run may order them differently.");
        md.AppendLine("- The same seeds do not give the same figures twice: which expert answers within its deadline, and which a grace period cuts, depends on the machine's timing, "
            + "and so does what each expert learns. Compare rows within one run.");
        md.AppendLine("- In experiment 5 the killed hosts' DHT records live on until they expire (twice the 30 s announcement period), so a gate keeps choosing experts whose "
            + "hosts are all dead for up to a minute. Each model is measured right after the kill, so every one meets that alike; a client measured later would meet fewer dead experts.");
        md.AppendLine("- The testnet deals each node a run of the grid's uids in one seeded order, so with two hosts per expert the nodes pair up: both hosts of an expert are "
            + "one such pair, and killing a pair removes all of its experts at once. A model that leans on one of those experts (with the default router losses some models "
            + "rank one expert first for most texts) loses far more than one that does not, which is why the ± of experiment 5 is wide; the texts then go to the experts left, "
            + "so they are answered, and often wrongly.");
        md.AppendLine("- Utilisation here is H(load)/log(E) of the experts ranked first over the test texts; the marginal entropy and load balance act per grid dimension, "
            + "so they spread the load over the grid's rows and columns, which raises but does not guarantee the use of every expert.");
        md.AppendLine("- Specialisation, I(domain; top-1 expert)/H(domain), reads high when few texts reach each expert: read it beside how many experts were ranked first for some text.");
        return md.ToString();
    }
}
