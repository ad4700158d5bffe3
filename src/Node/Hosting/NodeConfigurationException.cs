namespace MoEMesh.Node.Hosting;

/// <summary>The configuration cannot work; the message names the setting (as MoEMesh:Section:Name) and what is wrong.</summary>
public sealed class NodeConfigurationException(string message, Exception? inner = null) : Exception(message, inner);
