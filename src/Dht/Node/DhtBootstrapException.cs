namespace MoEMesh.Dht.Node;

/// <summary>None of the initial peers answered; the message names each one and why it failed.</summary>
public sealed class DhtBootstrapException(string message) : Exception(message);
