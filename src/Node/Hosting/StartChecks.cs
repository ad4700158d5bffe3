using MoEMesh.Experts;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// What is checked about a node's machine before anything is created (no key file, no port): every expert
/// type is one this node can build, and the folders it writes to can be written.
/// </summary>
internal static class StartChecks
{
    /// <exception cref="NodeConfigurationException">A check failed; the message names the setting and what to do.</exception>
    public static void Run(NodeOptions options, ExpertRegistry registry)
    {
        for (int i = 0; i < options.Experts.Count; i++)
            if (!registry.Types.Contains(options.Experts[i].Type))
                throw new NodeConfigurationException($"{NodeOptions.Section}:{nameof(NodeOptions.Experts)}:{i}:{nameof(ExpertHostingOptions.Type)}: "
                    + $"'{options.Experts[i].Type}' is not an expert type this node knows ({string.Join(", ", registry.Types)}) (--expert-type).");
        if (options.Experts.Count > 0) Writable(options.CheckpointDirectory, nameof(NodeOptions.CheckpointDirectory), "--checkpoint-dir");
        Writable(options.ModelDirectory, nameof(NodeOptions.ModelDirectory), "--model-dir");
    }

    private static void Writable(string folder, string setting, string flag)
    {
        try
        {
            Directory.CreateDirectory(folder);
            var probe = Path.Combine(folder, $".write-check.{Environment.ProcessId}.tmp");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NodeConfigurationException($"{NodeOptions.Section}:{setting}: {folder} cannot be written ({e.Message.TrimEnd('.')}); choose a folder this user can write ({flag}).", e);
        }
    }
}
