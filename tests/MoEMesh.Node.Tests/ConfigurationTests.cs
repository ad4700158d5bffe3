using Microsoft.Extensions.DependencyInjection;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Settings;

namespace MoEMesh.Node.Tests;

public class ConfigurationTests
{
    private static string Problem(Action<NodeOptions> change)
    {
        var options = new NodeOptions();
        change(options);
        return Assert.Throws<NodeConfigurationException>(options.Validate).Message;
    }

    [Fact]
    public void Defaults_AreValid() => new NodeOptions().Validate();

    [Theory]
    [InlineData("listen", "MoEMesh:Listen: 'nowhere' is not host:port")]
    [InlineData("peer", "MoEMesh:InitialPeers:1:")]
    [InlineData("both", "MoEMesh:Experts:0: set exactly one of Uid and Pattern")]
    [InlineData("pattern", "MoEMesh:Experts:0:Pattern: 'ffn.[4:2]': coordinate '[4:2]'")]
    [InlineData("count", "MoEMesh:Experts:0:Count: must be between 1 and the 4 uids of ffn.[0:2].[0:2]; got 5")]
    [InlineData("optimizer", "MoEMesh:Experts:0:Optimizer: must be sgd, adam or adamw; got 'lion'")]
    [InlineData("period", "MoEMesh:UpdatePeriod: must be positive")]
    [InlineData("batch", "MoEMesh:Batching:MaxBatchRows: must be at least 1; got 0")]
    [InlineData("client", "MoEMesh:Experts: a client-mode node cannot host experts")]
    [InlineData("compression", "MoEMesh:Routing:Compression: must be one of none, fp16, bf16, 8bit; got 'zip'")]
    [InlineData("texts", "MoEMesh:Models:MaxQueryTexts: must be at least 1; got 0")]
    [InlineData("trainers", "MoEMesh:Serving:TrainingPeers:1: 'alice' is not a PeerId")]
    [InlineData("clip", "MoEMesh:Experts:0:MaxGradNorm: must be positive and finite; got NaN")]
    [InlineData("protocol", "MoEMesh:Protocol:MaxConnectionsPerNetwork: must be at least 1; got 0")]
    [InlineData("concurrent", "MoEMesh:Batching:ConcurrentBatches: must be between 1 and 256; got 0")]
    [InlineData("blas", "MoEMesh:BlasThreads: must be between 1 and 1024; got -2")]
    public void InvalidSetting_IsNamed(string which, string expected)
    {
        var message = Problem(o =>
        {
            switch (which)
            {
                case "listen": o.Listen = "nowhere"; break;
                case "peer": o.InitialPeers = ["127.0.0.1:7000", "bad peer"]; break;
                case "both": o.Experts = [new ExpertHostingOptions { Uid = "ffn.0", Pattern = "ffn.[0:2]" }]; break;
                case "pattern": o.Experts = [new ExpertHostingOptions { Pattern = "ffn.[4:2]" }]; break;
                case "count": o.Experts = [new ExpertHostingOptions { Pattern = "ffn.[0:2].[0:2]", Count = 5 }]; break;
                case "optimizer": o.Experts = [new ExpertHostingOptions { Uid = "ffn.0", Optimizer = "lion" }]; break;
                case "period": o.UpdatePeriod = TimeSpan.Zero; break;
                case "batch": o.Batching.MaxBatchRows = 0; break;
                case "client": o.ClientMode = true; o.Experts = [new ExpertHostingOptions { Uid = "ffn.0" }]; break;
                case "compression": o.Routing.Compression = "zip"; break;
                case "texts": o.Models.MaxQueryTexts = 0; break;
                case "trainers": o.Serving.TrainingPeers = [Protocol.Identity.PeerIdentity.FromSeed(1).PeerId.ToString(), "alice"]; break;
                case "protocol": o.Protocol.MaxConnectionsPerNetwork = 0; break;
                case "concurrent": o.Batching.ConcurrentBatches = 0; break;
                case "blas": o.BlasThreads = -2; break;
                case "clip": o.Experts = [new ExpertHostingOptions { Uid = "ffn.0", MaxGradNorm = float.NaN }]; break;
            }
        });
        Assert.Contains(expected, message);
    }

    [Fact]
    public void EveryLimit_OfTheNodesConfiguration_HasItsKindsRule_AndEveryNestedSectionIsChecked()
    {
        var unruled = new List<string>();
        var pending = new Stack<(Type Type, string Path)>([(typeof(NodeOptions), NodeOptions.Section)]);
        while (pending.Count > 0)
        {
            var (type, path) = pending.Pop();
            foreach (var property in type.GetProperties().Where(p => p.CanWrite))
            {
                var kind = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                var element = kind.IsGenericType && kind.GetGenericTypeDefinition() == typeof(List<>) ? kind.GetGenericArguments()[0] : kind;
                bool nested = element.IsClass && element.Namespace?.StartsWith("MoEMesh", StringComparison.Ordinal) == true;
                if (nested != property.IsDefined(typeof(SectionAttribute), false)) unruled.Add($"{path}:{property.Name} ([Section] belongs on nested options only)");
                if (nested) pending.Push((element, $"{path}:{property.Name}"));
                else if (kind == typeof(TimeSpan) || kind == typeof(int) || kind == typeof(long) || kind == typeof(float) || kind == typeof(double))
                {
                    if (!property.IsDefined(typeof(SettingRuleAttribute), false)) unruled.Add($"{path}:{property.Name}");
                }
            }
        }
        Assert.Empty(unruled);
    }

    [Fact]
    public void SettingsOfDifferentSections_MustFitTogether()
    {
        Assert.Contains("MoEMesh:UpdatePeriod: must be at most half of Dht:MaxTtl (01:00:00)", Problem(o => o.UpdatePeriod = TimeSpan.FromMinutes(45)));
        Assert.Contains("MoEMesh:Protocol:MaxMessageBytes: must leave room for a whole find answer (Dht:MaxReplyBytes, 4194304", Problem(o => o.Protocol.MaxMessageBytes = 4 << 20));
    }

    [Fact]
    public void AnAddressAndAnotherValue_AreBothNamed()
    {
        var message = Problem(o =>
        {
            o.KeyFile = "";
            o.Listen = "nowhere";
            o.AnnounceAddresses = ["10.0.0.1:0"];
        });
        Assert.Equal(
        [
            "MoEMesh:KeyFile: must name a file or folder.",
            "MoEMesh:Listen: 'nowhere' is not host:port (for example 0.0.0.0:7700).",
            "MoEMesh:AnnounceAddresses:0: needs a real port, not 0; got '10.0.0.1:0'.",
        ], message.Split(Environment.NewLine));
    }

    [Fact]
    public void EveryProblem_IsNamed_AllAtOnce()
    {
        var message = Problem(o =>
        {
            o.Dht.RpcTimeout = TimeSpan.FromDays(2);
            o.Protocol.MessageTimeout = Timeout.InfiniteTimeSpan;
            o.Routing.DiscoveryTimeout = o.Routing.ForwardTimeout;
        });
        Assert.Equal(
        [
            "MoEMesh:Routing:DiscoveryTimeout: must be less than ForwardTimeout (00:00:02): finding experts is part of a forward, and the calls need some of it; got 00:00:02.",
            "MoEMesh:Dht:RpcTimeout: must be positive and at most a day (1.00:00:00); got 2.00:00:00.",
            "MoEMesh:Protocol:MessageTimeout: must be positive and at most a day (1.00:00:00); got -00:00:00.0010000.",
        ], message.Split(Environment.NewLine));
    }

    [Fact]
    public async Task ProtocolLimits_AreReadFromTheNodesConfiguration()
    {
        using var folder = new TempFolder();
        await using var app = NodeHost.Build([], new Dictionary<string, string?>
        {
            ["MoEMesh:KeyFile"] = Path.Combine(folder.Path, "node.key"),
            ["MoEMesh:Protocol:MaxConnectionsPerNetwork"] = "3",
            ["MoEMesh:Protocol:MessageTimeout"] = "00:00:30",
        }, null);
        var options = app.Services.GetRequiredService<NodeOptions>();
        Assert.Equal(3, options.Protocol.MaxConnectionsPerNetwork);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Protocol.MessageTimeout);
    }

    [Fact]
    public void UnknownSettingName_StopsTheStart_NamingIt()
    {
        var e = Assert.Throws<NodeConfigurationException>(() => NodeHost.Build([], new Dictionary<string, string?> { ["MoEMesh:Listn"] = "127.0.0.1:1" }, null));
        Assert.Contains("Listn", e.Message);
    }

    [Fact]
    public void UnreadableValue_StopsTheStart_NamingTheSetting()
    {
        var e = Assert.Throws<NodeConfigurationException>(() => NodeHost.Build([], new Dictionary<string, string?> { ["MoEMesh:Batching:MaxBatchRows"] = "many" }, null));
        Assert.Contains("MoEMesh:Batching:MaxBatchRows", e.Message);
    }

    [Fact]
    public void UnreadableValues_AreNamed_InWords_AllAtOnce()
    {
        var e = Assert.Throws<NodeConfigurationException>(() => NodeHost.Build([], new Dictionary<string, string?>
        {
            ["MoEMesh:Experts:0:Pattern"] = "ffn.[0:4]",
            ["MoEMesh:Experts:0:Count"] = "2.5",
            ["MoEMesh:UpdatePeriod"] = "soon",
            ["MoEMesh:UseTls"] = "maybe",
            ["MoEMesh:Listen:Host"] = "127.0.0.1",
            ["MoEMesh:Dht:Alpah"] = "3",
            ["MoEMesh:InitialPeers"] = "127.0.0.1:7700",
        }, null));
        Assert.Equal(
        [
            "MoEMesh:Dht:Alpah: there is no such setting (the README's Configuration lists them).",
            "MoEMesh:Experts:0:Count: '2.5' is not a whole number.",
            "MoEMesh:InitialPeers: takes a list ([\"...\"] in JSON, MoEMesh:InitialPeers:0, MoEMesh:InitialPeers:1, ... elsewhere), not one value.",
            "MoEMesh:Listen: takes one value, not a section.",
            "MoEMesh:UpdatePeriod: 'soon' is not a duration such as 00:00:30 (hh:mm:ss).",
            "MoEMesh:UseTls: 'maybe' is not true or false.",
        ], e.Message.Split(Environment.NewLine).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("Cannot parse argument 'abc' for option '--num-experts' as expected type 'System.Nullable`1[System.Int32]'.", "--num-experts: 'abc' is not a whole number.")]
    [InlineData("Cannot parse argument 'x' for option '--lr' as expected type 'System.Single'.", "--lr: 'x' is not a number.")]
    [InlineData("Option '--peer' is required.", "Option '--peer' is required.")]
    public void FlagErrors_AreInWords(string message, string expected) => Assert.Equal(expected, Cli.MoEMeshCommand.InWords(message));

    [Fact]
    public void MissingConfigFile_IsNamed()
    {
        var e = Assert.Throws<NodeConfigurationException>(() => NodeHost.Build([], new Dictionary<string, string?>(), "/nonexistent/moemesh.json"));
        Assert.Contains("/nonexistent/moemesh.json does not exist", e.Message);
    }

    [Fact]
    public void UidPattern_ExpandsTheGrid_AndMatchesOnlyItsUids()
    {
        var pattern = UidPattern.Parse("ffn.[0:2].[1:3]");
        Assert.Equal(4, pattern.Count);
        Assert.Equal(["ffn.0.1", "ffn.0.2", "ffn.1.1", "ffn.1.2"], pattern.Expand().Select(u => u.Value));
        Assert.True(pattern.Matches(ExpertUid.Parse("ffn.1.2")));
        Assert.False(pattern.Matches(ExpertUid.Parse("ffn.1.3")));
        Assert.False(pattern.Matches(ExpertUid.Parse("mlp.1.2")));
        Assert.False(pattern.Matches(ExpertUid.Parse("ffn.1")));
        Assert.Equal(["ffn.5.0", "ffn.5.1"], UidPattern.Parse("ffn.5.[0:2]").Expand().Select(u => u.Value));
    }
}
