using System.Globalization;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Study;

/// <summary>
/// What the study trains: one model per configuration and seed, all on the same data, each against a testnet
/// of its own (<see cref="Nodes"/> nodes hosting the grid's experts, each on two nodes or on one), started
/// afresh so every model meets the experts as they were made. Experiment 1 sets MoE against a dense model
/// of equal multiply-accumulates per text and one of equal parameters; experiment 2 switches the router
/// losses one at a time; experiment 3 sets contributors' domain experts, frozen and fine-tuned, against
/// experts trained jointly, all on the base model's trunk; experiment 4 sets dynamic top-p against fixed
/// top-2; experiment 5 measures MoE with and without a shared expert and replicas again with 30 % and then
/// 50 % of the nodes killed.
/// </summary>
/// <param name="Tiny">A check that the study runs end to end (CI): a 3-node testnet, the committed sample, a few steps.</param>
/// <param name="Seeds">Seeds per configuration.</param>
/// <param name="DataDir">Where train.tsv and test.tsv are.</param>
internal sealed record StudyPlan(bool Tiny, int Seeds, string DataDir)
{
    /// <summary>Nodes of the testnet.</summary>
    public int Nodes => Tiny ? 3 : 8;

    /// <summary>Rows and columns of the expert grid.</summary>
    public int GridSide => Tiny ? 2 : 4;

    /// <summary>Expert width d.</summary>
    public int Width => Tiny ? 16 : 64;

    /// <summary>Experts of the grid (E).</summary>
    public int Experts => GridSide * GridSide;

    /// <summary>The experts' inner width (ffn: 4d).</summary>
    public int ExpertInner => 4 * Width;

    /// <summary>Experts each node hosts when every expert has <paramref name="hosts"/> hosts (some one more when the count does not divide).</summary>
    public int ExpertsPerNode(int hosts) => Math.Max(1, (hosts * Experts + Nodes - 1) / Nodes);

    /// <summary>The data's columns.</summary>
    public DataColumns Columns => new(DomainColumn: "domain");

    /// <summary>
    /// Stands in the flags for the base model's file: the equal-MACs dense model of the same seed, trained on
    /// the joint data, whose trunk experiment 3's contributors and gates share.
    /// </summary>
    public const string BaseModel = "BASE";

    /// <summary>The configuration whose model is the base of experiment 3.</summary>
    public const string BaseConfig = "dense-flops";

    /// <summary>How long each model trains.</summary>
    public string[] Length => Tiny ? ["--steps", "30"] : ["--epochs", "1"];

    /// <summary>Every configuration, in the order they run.</summary>
    public IReadOnlyList<StudyConfig> Configs =>
    [
        new("1", "moe", "MoE, top-2", []),
        // Two experts per text cost 2 · (2 · d · 4d); a dense ffn of inner 8d costs the same.
        new("1", "dense-flops", $"dense, inner {2 * ExpertInner} (equal MACs per text)", ["--dense", (2 * ExpertInner).ToString(CultureInfo.InvariantCulture)]),
        // The grid's experts hold E · (2 · d · 4d) weights; a dense ffn of inner E · 4d holds as many.
        new("1", "dense-params", $"dense, inner {Experts * ExpertInner} (equal parameters)", ["--dense", (Experts * ExpertInner).ToString(CultureInfo.InvariantCulture)]),
        new("2", "losses-off", "no router loss", ["--balance-weight", "0", "--z-loss-weight", "0"]),
        new("2", "sample-entropy", "per-sample entropy 0.1 (minimised)", ["--balance-weight", "0", "--z-loss-weight", "0", "--sample-entropy-weight", "0.1"]),
        new("2", "marginal-entropy", "batch-marginal entropy 0.1 (maximised)", ["--balance-weight", "0", "--z-loss-weight", "0", "--marginal-entropy-weight", "0.1"]),
        new("2", "balance", "load balance 0.1", ["--balance-weight", "0.1", "--z-loss-weight", "0"]),
        new("4", "top-p", "dynamic top-p 0.5 (at most 2)", ["--top-p", "0.5"]),
        new("5", "shared", "MoE, top-2, with a shared expert", ["--shared-expert"]),
        new("5", "moe-1host", "MoE, top-2, one host per expert", [], Hosts: 1),
        new("5", "shared-1host", "MoE, top-2, with a shared expert, one host per expert", ["--shared-expert"], Hosts: 1),
        new("3", "joint-base", "experts trained jointly, on the base trunk", ["--trunk-from", BaseModel, "--freeze-trunk"]),
        new("3", "contrib-frozen", "contributors' experts, frozen", ["--trunk-from", BaseModel, "--freeze-trunk", "--freeze-experts"], Contributed: true),
        new("3", "contrib-tuned", "contributors' experts, fine-tuned", ["--trunk-from", BaseModel, "--freeze-trunk"], Contributed: true),
    ];

    /// <summary>Experiment 5: the shares of nodes down (never the first, through which the trainer joins) at which the MoE models are measured again.</summary>
    public IReadOnlyList<double> DownShares => [0.3, 0.5];

    /// <summary>The models experiment 5 measures with nodes down: plain MoE and MoE with a shared expert, with two hosts per expert and with one.</summary>
    public IReadOnlyList<string> DownModels => ["moe", "shared", "moe-1host", "shared-1host"];
}

/// <summary>One configuration of the study.</summary>
/// <param name="Experiment">Which experiment it belongs to ("1" … "5").</param>
/// <param name="Name">Short name, also the model's and its folder's.</param>
/// <param name="Description">What it is, for the report.</param>
/// <param name="Flags">The <c>moemesh train</c> flags that make it, beyond the common ones (<see cref="StudyPlan.BaseModel"/> for the base model's file).</param>
/// <param name="Hosts">Hosts per expert on its testnet.</param>
/// <param name="Contributed">Its testnet serves the experiment 3 contributors' experts, not fresh ones.</param>
internal sealed record StudyConfig(string Experiment, string Name, string Description, string[] Flags, int Hosts = 2, bool Contributed = false);
