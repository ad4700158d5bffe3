using Microsoft.Extensions.Logging;
using MoEMesh.Node.Hosting;
using MoEMesh.Protocol.Identity;
using MoEMesh.Testing;

namespace MoEMesh.Node.Tests;

public sealed class StartupLogTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public async Task NodeWithoutTls_SaysPlainlyThatItsTrafficIsNotAuthenticated(bool useTls, bool warned)
    {
        var options = TestNode.Configure(_folder.Sub(useTls ? "tls" : "plain"));
        options.UseTls = useTls;
        var logs = new ListLoggerProvider();
        await using var app = NodeHost.Build(options, PeerIdentity.FromSeed(60), l =>
        {
            l.ClearProviders();
            l.AddProvider(logs);
        });
        await app.StartAsync();
        await app.StopAsync();
        var warnings = logs.Logger.Lines.Where(l => l.Level == LogLevel.Warning && l.Message.Contains("TLS is off")).ToArray();
        Assert.Equal(warned, warnings.Length == 1);
        if (warned) Assert.Contains("anyone on the path can read and change it", warnings[0].Message);
    }
}
