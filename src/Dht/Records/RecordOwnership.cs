using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Records;

/// <summary>
/// Which keys and subkeys name an owner. The rule is textual, so every node applies it the same way
/// without knowing what the keys mean: a key or subkey names the owner <c>P</c> when it is exactly the
/// PeerId text <c>P</c>, or ends with <c>:P</c>. So <c>peer:&lt;PeerId&gt;</c> is owned, and a subkey that
/// is a host's PeerId (as under <c>expert:&lt;uid&gt;</c>) is owned by that host.
/// </summary>
public static class RecordOwnership
{
    /// <summary>The owner <paramref name="text"/> names, or null.</summary>
    public static PeerId? OwnerOf(string? text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        int colon = text.LastIndexOf(':');
        var candidate = colon < 0 ? text : text[(colon + 1)..];
        return PeerId.TryParse(candidate, out var owner) ? owner : null;
    }
}
